using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MessageQueue.DependencyInjection;

/// <summary>A running hosted handler: its subscription and its read loops.</summary>
internal abstract class HandlerRunner
{
    /// <summary>Subscribes and starts the read loops.</summary>
    public abstract Task StartAsync(ISubscriber subscriber, CancellationToken cancellationToken);

    /// <summary>
    /// Stops taking deliveries, waits for running handlers until <paramref name="cancellationToken"/> (the host's
    /// shutdown timeout), then detaches. Returns how many messages were handled and how many went back.
    /// </summary>
    public abstract Task<HandlerTotals> StopAsync(CancellationToken cancellationToken);
}

/// <summary>What a handler did while the host ran.</summary>
internal readonly record struct HandlerTotals(long Handled, int Returned);

/// <summary>
/// Runs <typeparamref name="THandler"/> over a durable subscription: a <see cref="HandlerLoop{T}"/> with up to
/// MaxConcurrency read loops, a service scope per message, and the host's shutdown timeout as the grace period.
/// </summary>
internal sealed class HandlerRunner<THandler, T> : HandlerRunner
    where THandler : class, IMessageHandler<T>
{
    private readonly HandlerRegistration _registration;
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly BrokerMetrics? _transportMetrics;
    private readonly string _handlerName = typeof(THandler).Name;
    private readonly Lock _stopGate = new();
    private Loop? _loop;
    private Task<HandlerTotals>? _stopping;

    // transportMetrics: the instruments for handler calls on a transport; on the broker, the loop uses the broker's own.
    public HandlerRunner(HandlerRegistration registration, IServiceScopeFactory scopes, TimeProvider time, ILogger logger, BrokerMetrics? transportMetrics)
    {
        _transportMetrics = transportMetrics;
        _registration = registration;
        _scopes = scopes;
        _time = time;
        _logger = logger;
    }

    public override async Task StartAsync(ISubscriber subscriber, CancellationToken cancellationToken)
    {
        MessageHandlerOptions options = _registration.Options;
        Subscription<T> subscription = await subscriber.SubscribeAsync<T>(_registration.Queue, _registration.Filters, options.Subscription, cancellationToken).ConfigureAwait(false);
        var loop = new Loop(this, subscription);
        lock (_stopGate)
        {
            _loop = loop;
        }

        loop.Start(options.MaxConcurrency);
        Log.HandlerStarted(_logger, _handlerName, _registration.Queue, _registration.SubscriptionName, string.Join(", ", _registration.Filters), options.MaxConcurrency);
    }

    public override Task<HandlerTotals> StopAsync(CancellationToken cancellationToken)
    {
        // Once: a second call (a host that stops twice, a failed start followed by a stop) gets the first one's result.
        lock (_stopGate)
        {
            return _stopping ??= _loop is { } loop ? StopCoreAsync(loop, cancellationToken) : Task.FromResult(default(HandlerTotals));
        }
    }

    private async Task<HandlerTotals> StopCoreAsync(Loop loop, CancellationToken cancellationToken)
    {
        // 1. Take no more deliveries: loops waiting for one end now, loops in a handler end when it returns.
        loop.StopReading();

        // 2. What was prefetched but not yet read goes back to the subscription at once (uncounted as an attempt),
        //    rather than waiting behind the handlers still running.
        int unread = 0;
        int cutShort = 0;
        int waiting = 0;
        IConsumer? consumer = loop.Consumer;
        try
        {
            if (consumer is not null)
            {
                consumer.StopDelivering();
                unread = consumer.TakeBackUnread();
            }

            // 3. Let running handlers finish, within the host's shutdown timeout.
            try
            {
                await loop.Loops.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Out of time: cancel the running handlers, and take their deliveries back without using up an
                // attempt, so that a message on its last attempt is not dead-lettered for a slow shutdown. A handler
                // that settles one afterwards gets false.
                loop.Abort();
                cutShort = loop.TakeBackCutShort();
                if (cutShort > 0 && consumer is not null)
                {
                    Log.HandlersCancelledAtStop(_logger, cutShort, _handlerName, _registration.SubscriptionName);
                }
                else if (cutShort > 0)
                {
                    // Another transport (RabbitMQ): the deliveries go back when the subscription detaches, by its rules.
                    Log.HandlersCancelledAtStopOnTransport(_logger, cutShort, _handlerName, _registration.SubscriptionName);
                }
            }

            // What is left is waiting out a retry delay; it goes back to the subscription on detach.
            waiting = consumer?.GetSnapshot().InFlight ?? 0;
        }
        finally
        {
            // 4. Detach, whatever happened above. Everything unsettled goes back to the durable subscription, and
            //    stays in the store for the next start.
            await loop.Subscription.DisposeAsync().ConfigureAwait(false);
        }

        long handled = loop.Handled;
        if (consumer is not null)
        {
            Log.HandlerStopped(_logger, _handlerName, handled, unread, cutShort + waiting, _registration.SubscriptionName);
        }
        else
        {
            // Another transport does not say what it had prefetched: only the calls cut short are counted.
            Log.HandlerStoppedOnTransport(_logger, _handlerName, handled, cutShort, _registration.SubscriptionName);
        }

        return new HandlerTotals(handled, unread + cutShort + waiting);
    }

    /// <summary>The hosted handler's loop: a scope per message, and the hosting package's log events.</summary>
    private sealed class Loop(HandlerRunner<THandler, T> runner, Subscription<T> subscription)
        : HandlerLoop<T>(subscription, runner._registration.SubscriptionName, runner._registration.Options.HandlerTimeout, runner._time, runner._transportMetrics)
    {
        // The scope ends after the ack (HandlerLoop disposes it), so that when a scoped service is disposed the
        // message is settled. Boxed once per message; creating the scope allocates anyway.
        protected override IAsyncDisposable? EnterScope() => runner._scopes.CreateAsyncScope();

        protected override ValueTask InvokeAsync(Delivery<T> delivery, IAsyncDisposable? scope, CancellationToken cancellationToken) =>
            ((AsyncServiceScope)scope!).ServiceProvider.GetRequiredService<THandler>().HandleAsync(delivery, cancellationToken);

        protected override void OnNacked(in Delivery<T> delivery, Exception error, bool settled, bool timedOut)
        {
            Message<T> message = delivery.Message;
            string handler = runner._handlerName;
            if (!settled)
            {
                // The handler (or a scoped service's clean-up) threw after the delivery was settled, or the delivery
                // was taken back at stop: nothing to redeliver, and not a failure of the message.
                if (!IsAborted)
                {
                    Log.HandlerThrewAfterSettling(runner._logger, error, handler, message.Id, message.Event, delivery.Attempt);
                }
            }
            else if (timedOut)
            {
                Log.HandlerTimedOut(runner._logger, handler, runner._registration.Options.HandlerTimeout, message.Id, message.Event, delivery.Attempt);
            }
            else if (delivery.IsLastAttempt)
            {
                Log.HandlerFailedLastAttempt(runner._logger, error, handler, message.Id, message.Event, delivery.Attempt);
            }
            else
            {
                Log.HandlerFailed(runner._logger, error, handler, message.Id, message.Event, delivery.Attempt);
            }
        }

        protected override void OnReadingEnded(Exception? error) => Log.SubscriptionEnded(runner._logger, error, runner._handlerName);
    }
}
