namespace MessageQueue;

/// <summary>
/// The handler form of a subscription: one <see cref="HandlerLoop{T}"/> that reads deliveries one at a time, in order,
/// runs the user's handler, and acks on success or nacks on an exception. Disposing it cancels the handler's token and
/// waits for a running handler to return; a handler that ends in <see cref="OperationCanceledException"/> then is
/// not held against its message, which goes back to the subscription without using up an attempt.
/// </summary>
internal sealed class HandlerSubscription<T> : Subscription
{
    private readonly Loop _loop;
    private readonly Task _ended;
    private int _disposed;

    public HandlerSubscription(Subscription<T> inner, Func<Delivery<T>, CancellationToken, ValueTask> handler)
    {
        _loop = new Loop(inner, handler);

        // When the inner subscription ends (for example on broker shutdown), the handler stops too.
        inner.Completion.ContinueWith(
            static (_, state) => ((HandlerSubscription<T>)state!).Stop(),
            this,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        _loop.Start(concurrency: 1);
        _ended = EndAsync();
        Completion = CompleteAsync();
    }

    public override string Queue => _loop.Subscription.Queue;

    public override string? Name => _loop.Subscription.Name;

    public override IReadOnlyList<string> Filters => _loop.Subscription.Filters;

    public override Task Completion { get; }

    private void Stop()
    {
        _loop.StopReading();
        _loop.Abort();
    }

    private async Task EndAsync()
    {
        await _loop.Loops.ConfigureAwait(false);

        // Detach here, after the last handler call settled its delivery, whether DisposeAsync waits for the loop or
        // was called from inside the handler and could not.
        if (Volatile.Read(ref _disposed) != 0)
        {
            _loop.TakeBackCutShort();
            await _loop.Subscription.DisposeAsync().ConfigureAwait(false);
            _loop.Consumer?.Client.ForgetHandler(this);
        }
    }

    private async Task CompleteAsync()
    {
        await _ended.ConfigureAwait(false);
        await _loop.Subscription.Completion.ConfigureAwait(false);
    }

    public override ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // Ask a running handler to stop. The loop detaches the consumer when it ends, after the current delivery
            // was settled, so nothing is left half-done.
            Stop();
        }

        // From inside this subscription's own handler, the loop cannot end before the caller returns.
        return ReferenceEquals(HandlerScope.Current, _loop) ? ValueTask.CompletedTask : new ValueTask(_ended);
    }

    private sealed class Loop(Subscription<T> inner, Func<Delivery<T>, CancellationToken, ValueTask> handler)
        : HandlerLoop<T>(inner, inner.Name, Timeout.InfiniteTimeSpan, TimeProvider.System)
    {
        protected override ValueTask InvokeAsync(Delivery<T> delivery, IAsyncDisposable? scope, CancellationToken cancellationToken) =>
            handler(delivery, cancellationToken);

        protected override void OnHandlerThrew(in Delivery<T> delivery, Exception error)
        {
            if (Consumer?.State.Queue.Events.Logger is { } logger)
            {
                BrokerLog.HandlerFailed(logger, error, Subscription.Name ?? "(ephemeral)", delivery.Message.Queue, delivery.Message.Id, delivery.Event, delivery.Attempt);
            }
        }
    }
}
