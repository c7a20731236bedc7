using RabbitMQ.Client.Exceptions;

namespace MessageQueue.RabbitMQ;

/// <summary>A subscription's settlements: ack, nack (with its delay), reject and extend, and the acks and nacks they send on the channel in use.</summary>
internal sealed partial class RabbitMqSubscription<T>
{
    // ---------------------------------------------------------------- settling

    protected override async ValueTask<bool> AckCoreAsync(long token, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!TakePending(token, out Pending pending))
        {
            return false;
        }

        _returns.TryRemove(pending.Message.Id, out _);
        return await TrySendAsync(requeue: null, token).ConfigureAwait(false);
    }

    /// <summary>The delay before redelivering a message nacked on <paramref name="attempt"/>, from the subscription's schedule (its last entry repeats).</summary>
    private TimeSpan RedeliveryDelay(int attempt)
    {
        IList<TimeSpan> delays = _options.RedeliveryDelays;
        return delays.Count == 0 ? TimeSpan.Zero : delays[Math.Min(attempt, delays.Count) - 1];
    }

    protected override async ValueTask<bool> NackCoreAsync(long token, TimeSpan? delay, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!TakePending(token, out Pending pending))
        {
            return false;
        }

        if (pending.Attempt >= _options.MaxDeliveries)
        {
            return await DeadLetterAsync(token, pending, DeadLetterReasons.MaxDeliveries, detail: null).ConfigureAwait(false);
        }

        TimeSpan wait = delay ?? RedeliveryDelay(pending.Attempt);
        if (wait > MaxNackDelay)
        {
            _pending.TryAdd(token, pending);
            throw new ArgumentOutOfRangeException(nameof(delay), wait,
                $"On RabbitMQ a nack delay may be at most {MaxNackDelay}: the consumer holds the delivery unacked meanwhile, and RabbitMQ closes a channel that holds one past its consumer timeout. The delivery is still pending.");
        }

        if (wait <= TimeSpan.Zero)
        {
            return await RequeueAsync(token, pending.Message.Id).ConfigureAwait(false);
        }

        // The backoff is kept here: the delivery stays unacked (holding its share of the prefetch, so nothing newer
        // overtakes it with MaxInFlight = 1) and goes back when the delay has passed.
        ITimer timer = _owner.Options.TimeProvider.CreateTimer(
            static state =>
            {
                var (subscription, tag, id) = ((RabbitMqSubscription<T>, long, Guid))state!;
                if (subscription._parked.TryRemove(tag, out ITimer? parked))
                {
                    parked.Dispose();
                    _ = subscription.RequeueAsync(tag, id);
                }
            },
            (this, token, pending.Message.Id),
            Timeout.InfiniteTimeSpan,
            Timeout.InfiniteTimeSpan);
        _parked[token] = timer;
        if (!IsCurrent(token) || Volatile.Read(ref _closing) != 0)
        {
            // The channel was lost (or the subscription closed) meanwhile: RabbitMQ has the delivery back already.
            if (_parked.TryRemove(token, out ITimer? stale))
            {
                stale.Dispose();
            }

            return false;
        }

        timer.Change(wait, Timeout.InfiniteTimeSpan);
        return true;
    }

    protected override async ValueTask<bool> RejectCoreAsync(long token, string? reason, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!TakePending(token, out Pending pending))
        {
            return false;
        }

        return await DeadLetterAsync(token, pending, DeadLetterReasons.Rejected, reason).ConfigureAwait(false);
    }

    protected override ValueTask<bool> ExtendCoreAsync(long token, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new ValueTask<bool>(_pending.ContainsKey(token) && IsCurrent(token));
    }

    /// <summary>False, forgetting the delivery, when its channel is gone: a settle of it changes nothing.</summary>
    private bool TakePending(long token, out Pending pending)
    {
        bool found = _pending.TryRemove(token, out pending);
        return found && IsCurrent(token);
    }

    private async Task<bool> RequeueAsync(long tag, Guid id)
    {
        if (!_durable)
        {
            _returns.AddOrUpdate(id, 1, static (_, count) => count + 1);
        }

        return await TrySendAsync(requeue: true, tag).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends an ack (<paramref name="requeue"/> null) or a nack that requeues; false when the channel is gone (RabbitMQ
    /// has taken the delivery back).
    /// </summary>
    private async Task<bool> TrySendAsync(bool? requeue, long token)
    {
        if (LeaseOf(token) is not { } lease)
        {
            return false;
        }

        ulong tag = (ulong)token & TagMask;
        Interlocked.Increment(ref _sending);
        try
        {
            if (Volatile.Read(ref _closing) != 0)
            {
                // Closing: the channel's close gives the delivery back to RabbitMQ.
                return false;
            }

            if (requeue is null)
            {
                await lease.Channel.BasicAckAsync(tag, multiple: false, CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                await lease.Channel.BasicNackAsync(tag, multiple: false, requeue: requeue.Value, CancellationToken.None).ConfigureAwait(false);
            }

            return true;
        }
        catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException or IOException)
        {
            return false;
        }
        finally
        {
            if (Interlocked.Decrement(ref _sending) == 0 && Volatile.Read(ref _closing) != 0)
            {
                Volatile.Read(ref _sendsDone)?.TrySetResult();
            }
        }
    }
}
