namespace MessageQueue;

/// <summary>
/// The handler form of a subscription: a loop on the thread pool that reads deliveries one at a time,
/// runs the user's handler, and acks on success or nacks on an exception.
/// </summary>
internal sealed class HandlerSubscription<T> : Subscription, IRunningHandler
{
    private readonly Subscription<T> _inner;

    // The broker's instruments, for messaging.process.duration; null over another implementation of the contract.
    private readonly BrokerMetrics? _metrics;
    private readonly Microsoft.Extensions.Logging.ILogger? _logger;
    private readonly Func<Delivery<T>, CancellationToken, ValueTask> _handler;

    // Cancelled by DisposeAsync, or when the inner subscription ends (for example on broker shutdown).
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _disposed;

    public HandlerSubscription(Subscription<T> inner, Func<Delivery<T>, CancellationToken, ValueTask> handler)
    {
        _inner = inner;
        _metrics = (inner as Consumer<T>)?.State.Queue.Events.Metrics;
        _logger = (inner as Consumer<T>)?.State.Queue.Events.Logger;
        _handler = handler;
        _inner.Completion.ContinueWith(
            static (_, state) => ((HandlerSubscription<T>)state!).CancelHandler(),
            this,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

        // Task.Run: the first handler call must not run on the subscriber's thread.
        _loop = Task.Run(RunAsync);
        Completion = CompleteAsync();
    }

    public override string Queue => _inner.Queue;

    public override string? Name => _inner.Name;

    public override IReadOnlyList<string> Filters => _inner.Filters;

    public override Task Completion { get; }

    IConsumer? IRunningHandler.Consumer => _inner as IConsumer;

    private async Task RunAsync()
    {
        // The loop outlives whatever span was current when it subscribed (a request, start-up): a message without
        // trace context starts a trace of its own rather than joining that one.
        System.Diagnostics.Activity.Current = null;
        HandlerScope.Enter(this);
        CancellationToken stopping = _stop.Token;
        try
        {
            while (await _inner.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                while (!stopping.IsCancellationRequested && _inner.TryRead(out Delivery<T> delivery))
                {
                    using HandlerCall call = HandlerCall.Start(_metrics, delivery, _inner.Name);
                    try
                    {
                        await _handler(delivery, stopping).ConfigureAwait(false);
                    }
#pragma warning disable CA1031 // A handler's exception is the handler's business: count it and redeliver.
                    catch (Exception error)
#pragma warning restore CA1031
                    {
                        call.Failed(error);
                        if (_logger is not null)
                        {
                            BrokerLog.HandlerFailed(_logger, error, _inner.Name ?? "(ephemeral)", delivery.Message.Queue, delivery.Message.Id, delivery.Event, delivery.Attempt);
                        }

                        await HandlerFailure.NackAsync(_inner, delivery, error).ConfigureAwait(false);
                        continue;
                    }

                    call.Succeeded();

                    // False when the handler settled the delivery itself; that is fine.
                    await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Disposed, or the inner subscription ended: stop quietly.
        }
        finally
        {
            // Detach here, after the last handler call settled its delivery, whether DisposeAsync waits
            // for this loop or was called from inside the handler and could not.
            if (Volatile.Read(ref _disposed) != 0)
            {
                await _inner.DisposeAsync().ConfigureAwait(false);
                (_inner as Consumer<T>)?.Client.ForgetHandler(this);
            }
        }
    }

    private async Task CompleteAsync()
    {
        await _loop.ConfigureAwait(false);
        await _inner.Completion.ConfigureAwait(false);
    }

    private void CancelHandler()
    {
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already disposed: nothing left to cancel.
        }
    }

    public override ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // Ask a running handler to stop. The loop detaches the consumer when it ends, after the
            // current delivery was settled (or nacked), so nothing is left half-done.
            CancelHandler();
        }

        // From inside this subscription's own handler, the loop cannot end before the caller returns.
        return ReferenceEquals(HandlerScope.Current, this) ? ValueTask.CompletedTask : new ValueTask(_loop);
    }
}
