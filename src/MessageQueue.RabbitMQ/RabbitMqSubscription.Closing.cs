using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace MessageQueue.RabbitMQ;

/// <summary>A subscription's end and its recovery: disposing, faulting, closing its channel, and what a lost connection or channel does to it.</summary>
internal sealed partial class RabbitMqSubscription<T>
{
    // ---------------------------------------------------------------- closing

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            await _completion.Task.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            return;
        }

        Abandon();
        _incoming.Writer.TryComplete();
        await CloseLeaseAsync(_lease.Channel).ConfigureAwait(false);
        _completion.TrySetResult();
    }

    /// <summary>Forgets what this consumer holds: closing the channel gives it all back to RabbitMQ.</summary>
    private void Abandon()
    {
        _pending.Clear();
        foreach (long tag in _parked.Keys)
        {
            if (_parked.TryRemove(tag, out ITimer? timer))
            {
                timer.Dispose();
            }
        }
    }

    private void Fault(SubscriptionClosedException closed)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        _incoming.Writer.TryComplete(closed);
        _completion.TrySetException(closed);
        _ = CloseLeaseAsync(_lease.Channel);
    }

    /// <summary>
    /// Closes the channel in use once the acks and nacks already on their way are sent. Called after _closing is set,
    /// so no new one starts.
    /// </summary>
    private async Task CloseLeaseAsync(IChannel channel)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _sendsDone, done);
        if (Volatile.Read(ref _sending) == 0)
        {
            done.TrySetResult();
        }

        await done.Task.ConfigureAwait(false);
        await CloseChannelAsync(channel).ConfigureAwait(false);
    }

    private static async Task CloseChannelAsync(IChannel channel)
    {
        try
        {
            await channel.CloseAsync().ConfigureAwait(false);
        }
        catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException or IOException)
        {
            // Already gone with its connection: nothing is left to give back.
        }

        await channel.DisposeAsync().ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- a lost connection or channel

    /// <summary>
    /// The transport lost its connection. What this consumer held goes back to RabbitMQ with the connection: forget it.
    /// A durable subscription waits for <see cref="ResumeAsync"/>; an ephemeral one ends, because RabbitMQ deleted its
    /// queue with the connection and what is published until it subscribes again never reaches it.
    /// </summary>
    public void OnConnectionLost(string reason)
    {
        // From here on nothing from the lost channel is read or settled, and what it left in the buffer goes: RabbitMQ
        // delivers all of it again on the next channel, which may fill the buffer up to MaxInFlight by itself.
        _lease.Lost = true;
        Abandon();
        while (_incoming.Reader.TryRead(out _))
        {
        }

        if (!_durable)
        {
            Fault(new SubscriptionClosedException(Queue, Name, SubscriptionCloseReason.ConnectionLost,
                $"The connection to RabbitMQ was lost ({reason}). An ephemeral subscription's queue goes with its connection, so this subscription has ended; subscribe again once the server is back (RabbitMqTransport.Reconnected)."));
        }
    }

    /// <summary>
    /// After the transport reconnected: a durable subscription consumes again on a channel of the new connection,
    /// and the deliveries its lost channel held come from RabbitMQ again. False, with the subscription faulted,
    /// when that fails.
    /// </summary>
    public async Task<bool> ResumeAsync(IConnection connection, int generation)
    {
        if (Volatile.Read(ref _closing) != 0)
        {
            return false;
        }

        IChannel? channel = null;
        try
        {
            channel = await connection.CreateChannelAsync().ConfigureAwait(false);
            var lease = new Lease(channel, generation);
            _lease = lease;
            await ConsumeAsync(lease, CancellationToken.None).ConfigureAwait(false);
            if (Volatile.Read(ref _closing) != 0)
            {
                // Disposed while it resumed: DisposeAsync may have closed the previous channel, not this one.
                await CloseChannelAsync(channel).ConfigureAwait(false);
                return false;
            }

            return true;
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            if (channel is not null)
            {
                await CloseChannelAsync(channel).ConfigureAwait(false);
            }

            Fault(new SubscriptionClosedException(Queue, Name, SubscriptionCloseReason.ConnectionLost,
                $"The subscription on '{Queue}' could not consume again after RabbitMQ came back ({error.Message}); what it held stays on the server. Subscribe again."));
            return false;
        }
    }

    /// <summary>RabbitMQ cancelled the consumer (its queue was deleted, say) while the channel stays open.</summary>
    private Task OnConsumerCancelledAsync(Lease lease) => EndUnasked(lease,
        $"RabbitMQ cancelled the consumer of the subscription on '{Queue}' (its queue was deleted, or the server is shutting it down). Subscribe again.");

    private Task OnChannelShutdownAsync(Lease lease, ShutdownEventArgs reason) => EndUnasked(lease,
        $"The RabbitMQ channel of the subscription on '{Queue}' closed ({reason.ReplyCode} {reason.ReplyText}); what it held unacked stays on the server and is delivered again. Subscribe again.");

    /// <summary>
    /// Ends the subscription when the channel in use stopped delivering while its connection stays up. A lost
    /// connection is the transport's to handle (OnConnectionLost, then ResumeAsync for a durable subscription).
    /// </summary>
    private Task EndUnasked(Lease lease, string message)
    {
        if (lease == _lease && Volatile.Read(ref _closing) == 0 && !_owner.IsConnectionLost(lease.Generation))
        {
            Abandon();
            Fault(new SubscriptionClosedException(Queue, Name, SubscriptionCloseReason.ConnectionLost, message));
        }

        return Task.CompletedTask;
    }
}
