namespace MessageQueue;

/// <summary>
/// The handler form of a subscription: a loop on the thread pool that reads deliveries one at a time,
/// runs the user's handler, and acks on success or nacks on an exception.
/// </summary>
internal sealed class HandlerSubscription<T> : Subscription
{
    private readonly Subscription<T> _inner;
    private readonly Func<Delivery<T>, CancellationToken, ValueTask> _handler;

    // Cancelled by DisposeAsync, or when the inner subscription ends (for example on broker shutdown).
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _disposed;

    public HandlerSubscription(Subscription<T> inner, Func<Delivery<T>, CancellationToken, ValueTask> handler)
    {
        _inner = inner;
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

    private async Task RunAsync()
    {
        CancellationToken stopping = _stop.Token;
        try
        {
            while (await _inner.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                while (!stopping.IsCancellationRequested && _inner.TryRead(out Delivery<T> delivery))
                {
                    try
                    {
                        await _handler(delivery, stopping).ConfigureAwait(false);
                    }
#pragma warning disable CA1031 // A handler's exception is the handler's business: count it and redeliver.
                    catch (Exception)
#pragma warning restore CA1031
                    {
                        (_inner as Consumer<T>)?.RecordHandlerFailure();
                        await delivery.NackAsync(CancellationToken.None).ConfigureAwait(false);
                        continue;
                    }

                    // False when the handler settled the delivery itself; that is fine.
                    await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Disposed, or the inner subscription ended: stop quietly.
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

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            await _loop.ConfigureAwait(false);
            return;
        }

        // Ask a running handler to stop and wait for it: its delivery is then settled (or nacked)
        // before the consumer detaches, so nothing is left half-done.
        CancelHandler();
        await _loop.ConfigureAwait(false);
        await _inner.DisposeAsync().ConfigureAwait(false);
        (_inner as Consumer<T>)?.Client.ForgetHandler(this);
        _stop.Dispose();
    }
}
