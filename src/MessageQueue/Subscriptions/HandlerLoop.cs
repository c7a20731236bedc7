namespace MessageQueue;

/// <summary>
/// Runs a handler over a subscription: the one loop behind the handler form of SubscribeAsync and behind the hosted
/// handlers of MessageQueue.DependencyInjection. Each of its read loops takes a delivery, runs the handler under its
/// process span and duration, acks when the handler returns and nacks when it throws.
/// </summary>
/// <remarks>
/// <para>
/// Stopping has two steps, so that each owner picks its own grace period. <see cref="StopReading"/>: no more deliveries
/// are taken, and running handlers go on. <see cref="Abort"/>: the handlers' token is cancelled. A handler that ends
/// with <see cref="OperationCanceledException"/> after the abort is not nacked (the stop cut it short, the message did
/// nothing wrong); <see cref="TakeBackCutShort"/> returns such deliveries to their subscription without using up an
/// attempt.
/// </para>
/// <para>
/// The owner supplies the handler call (<see cref="InvokeAsync"/>), an optional scope around the call and its ack
/// (<see cref="EnterScope"/>), and what to log (<see cref="OnHandlerThrew"/>, <see cref="OnNacked"/>,
/// <see cref="OnReadingEnded"/>). Nothing on a delivery's path allocates unless the owner's hooks do.
/// </para>
/// </remarks>
#pragma warning disable CA1001 // Its token sources are cancelled at stop, never disposed: a handler cut short may still be observing them.
internal abstract class HandlerLoop<T> : IRunningHandler
{
    // Cancelled by StopReading: the loops take no more deliveries.
    private readonly CancellationTokenSource _reading = new();

    // Cancelled by Abort: the running handlers are asked to stop.
    private readonly CancellationTokenSource _aborting = new();

    // The instruments for messaging.process.duration: the broker's over its own consumers, else the owner's (null for none).
    private readonly BrokerMetrics? _metrics;
    private readonly TimeProvider _time;
    private readonly TimeSpan _timeout;
    private readonly string? _subscriptionName;
    private Task _loops = Task.CompletedTask;

    // One per read loop, written only by that loop: counting costs no interlocked operation per delivery.
    private Worker[] _workers = [];
    private int _readingEnded;

    /// <param name="subscription">The subscription to read. The loop never disposes it: its owner does.</param>
    /// <param name="subscriptionName">The name the handler's telemetry carries.</param>
    /// <param name="timeout">How long one handler call may run before its token is cancelled; infinite for no limit.</param>
    /// <param name="time">The clock the timeout runs on.</param>
    /// <param name="metrics">The instruments to record handler calls on when the subscription is not the broker's own (a transport's); null for none.</param>
    protected HandlerLoop(Subscription<T> subscription, string? subscriptionName, TimeSpan timeout, TimeProvider time, BrokerMetrics? metrics = null)
    {
        Subscription = subscription;
        Consumer = subscription as Consumer<T>;
        _metrics = Consumer?.State.Queue.Events.Metrics ?? metrics;
        _subscriptionName = subscriptionName;
        _timeout = timeout;
        _time = time;
    }

    /// <summary>The subscription the loops read.</summary>
    public Subscription<T> Subscription { get; }

    /// <summary>The in-memory consumer behind <see cref="Subscription"/>; null over another implementation.</summary>
    public Consumer<T>? Consumer { get; }

    IConsumer? IRunningHandler.Consumer => Consumer;

    /// <summary>Completes when every read loop has ended (after <see cref="StopReading"/>, or when the subscription ends).</summary>
    public Task Loops => _loops;

    /// <summary>Whether <see cref="Abort"/> was called.</summary>
    public bool IsAborted => _aborting.IsCancellationRequested;

    /// <summary>Messages handled: the handler returned and the ack was sent.</summary>
    public long Handled
    {
        get
        {
            long handled = 0;
            foreach (Worker worker in _workers)
            {
                handled += Volatile.Read(ref worker.Handled);
            }

            return handled;
        }
    }

    /// <summary>Handler calls running now.</summary>
    public int Running
    {
        get
        {
            int running = 0;
            foreach (Worker worker in _workers)
            {
                running += Volatile.Read(ref worker.InHandler) ? 1 : 0;
            }

            return running;
        }
    }

    /// <summary>Starts <paramref name="concurrency"/> read loops on the thread pool (1 keeps the deliveries in order).</summary>
    public void Start(int concurrency)
    {
        var loops = new Task[concurrency];
        var workers = new Worker[concurrency];
        _workers = workers;
        for (int i = 0; i < loops.Length; i++)
        {
            // Task.Run: a handler never runs on the thread that started the loop.
            Worker worker = workers[i] = new Worker();
            loops[i] = Task.Run(() => ReadAsync(worker), CancellationToken.None);
        }

        _loops = concurrency == 1 ? loops[0] : Task.WhenAll(loops);
    }

    /// <summary>Takes no more deliveries: loops waiting for one end now, loops in a handler end when it returns.</summary>
    public void StopReading() => _reading.Cancel();

    /// <summary>Cancels the running handlers' token; what they end with is not held against their messages.</summary>
    public void Abort() => _aborting.Cancel();

    /// <summary>
    /// After <see cref="Abort"/>: the deliveries read and not settled go back to the subscription without using up an
    /// attempt. Returns how many, or, over another implementation of the contract, how many handler calls are running
    /// (their deliveries go back by that implementation's rules when the subscription detaches).
    /// </summary>
    public int TakeBackCutShort()
    {
        if (Consumer is not IConsumer consumer)
        {
            return Running;
        }

        // Taking back needs the consumer stopped first, so nothing new is handed to it meanwhile (idempotent).
        consumer.StopDelivering();
        return consumer.TakeBackInFlight();
    }

    /// <summary>Calls the handler. Runs inside the scope <see cref="EnterScope"/> returned, if any.</summary>
    protected abstract ValueTask InvokeAsync(Delivery<T> delivery, IAsyncDisposable? scope, CancellationToken cancellationToken);

    /// <summary>A scope around one handler call and its ack, disposed after the ack; null (the default) for none.</summary>
    protected virtual IAsyncDisposable? EnterScope() => null;

    /// <summary>The handler threw; called before the delivery is nacked.</summary>
    protected virtual void OnHandlerThrew(in Delivery<T> delivery, Exception error)
    {
    }

    /// <summary>
    /// After a failed call's nack. <paramref name="settled"/> is false when the delivery was settled already (by the
    /// handler before it threw) and the nack did nothing; <paramref name="timedOut"/> says the call ran past its timeout.
    /// </summary>
    protected virtual void OnNacked(in Delivery<T> delivery, Exception error, bool settled, bool timedOut)
    {
    }

    /// <summary>
    /// The subscription ended under the loop (taken over, broker disposed) while nobody was stopping it; called once,
    /// after its completion, with the error a read ended with, if any.
    /// </summary>
    protected virtual void OnReadingEnded(Exception? error)
    {
    }

    // One method for the whole loop, the handling of each delivery inlined: a nested async method per delivery cost
    // about 10 % of the handler form's throughput.
    private async Task ReadAsync(Worker worker)
    {
        // The loop outlives whatever span was current when it started (a request, start-up): a message without trace
        // context starts a trace of its own rather than joining that one.
        System.Diagnostics.Activity.Current = null;

        // A handler that publishes into its own full queue fails fast, and one that disposes the broker, its client or
        // its subscription is not waited for by that call: it is the caller.
        HandlerScope.Enter(this);
        Subscription<T> subscription = Subscription;
        CancellationToken reading = _reading.Token;
        Exception? readError = null;
        try
        {
            // The cancellation check comes first: a wait with a cancelled token may still report a delivery ready.
            while (!reading.IsCancellationRequested && await subscription.WaitToReadAsync(reading).ConfigureAwait(false))
            {
                while (!reading.IsCancellationRequested && subscription.TryRead(out Delivery<T> delivery))
                {
                    Volatile.Write(ref worker.InHandler, true);
                    CancellationTokenSource? timer = null;
                    CancellationTokenSource? linked = null;
                    CancellationToken token = _aborting.Token;
                    bool returned = false;
                    using HandlerCall call = HandlerCall.Start(_metrics, delivery, _subscriptionName);
                    if (_timeout != Timeout.InfiniteTimeSpan)
                    {
                        // The timeout runs on the owner's clock, so tests drive it with a manual TimeProvider.
                        timer = new CancellationTokenSource(_timeout, _time);
                        linked = CancellationTokenSource.CreateLinkedTokenSource(token, timer.Token);
                        token = linked.Token;
                    }

                    try
                    {
                        // The scope ends after the ack, so that when a scoped service is disposed the message is settled.
                        IAsyncDisposable? scope = EnterScope();
                        try
                        {
                            await InvokeAsync(delivery, scope, token).ConfigureAwait(false);
                            returned = true;
                            call.Succeeded();

                            // False when the handler settled the delivery itself; that is fine.
                            await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
                            Volatile.Write(ref worker.Handled, worker.Handled + 1);
                        }
                        finally
                        {
                            if (scope is not null)
                            {
                                await scope.DisposeAsync().ConfigureAwait(false);
                            }
                        }
                    }
                    catch (OperationCanceledException) when (_aborting.IsCancellationRequested)
                    {
                        // Cut short by a stop: not the message's fault, so no nack. The owner takes the delivery back
                        // without using up an attempt (TakeBackCutShort).
                    }
#pragma warning disable CA1031 // A handler's exception is the handler's business: count it, report it and redeliver.
                    catch (Exception error)
#pragma warning restore CA1031
                    {
                        if (!returned)
                        {
                            // The handler threw (not a scope's clean-up after it returned).
                            call.Failed(error);
                            OnHandlerThrew(delivery, error);
                        }

                        // Over the broker's consumer the nack keeps the error for the dead letter's headers and counts the
                        // failure, and only when it settled the delivery: a handler that acked or rejected it and then
                        // threw (or whose scope's clean-up threw) did not fail the message. Another transport gets a plain
                        // nack on the subscription's schedule.
                        bool settled = Consumer is { } consumer
                            ? consumer.NackAfterHandlerFailure(delivery, error)
                            : await delivery.NackAsync(CancellationToken.None).ConfigureAwait(false);
                        OnNacked(delivery, error, settled, timer is { IsCancellationRequested: true });
                    }
                    finally
                    {
                        linked?.Dispose();
                        timer?.Dispose();
                        Volatile.Write(ref worker.InHandler, false);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (reading.IsCancellationRequested)
        {
            // Stopping.
        }
#pragma warning disable CA1031 // The subscription ended under the loop: the owner hears of it, nothing crashes.
        catch (Exception error) when (!reading.IsCancellationRequested)
#pragma warning restore CA1031
        {
            readError = error;
        }

        if (!reading.IsCancellationRequested && Interlocked.Exchange(ref _readingEnded, 1) == 0)
        {
            // Ended under the loop: the subscription's completion says why.
            await subscription.Completion.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            OnReadingEnded(subscription.Completion.Exception?.InnerException ?? readError);
        }
    }

    /// <summary>What one read loop counts.</summary>
    private sealed class Worker
    {
        public long Handled;
        public bool InHandler;
    }
}
#pragma warning restore CA1001
