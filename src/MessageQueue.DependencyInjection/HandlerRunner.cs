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

/// <summary>Runs <typeparamref name="THandler"/> over a durable subscription with up to MaxConcurrency read loops.</summary>
#pragma warning disable CA1001 // Its token sources are cancelled at stop, never disposed: a handler abandoned at stop may still be observing them.
internal sealed class HandlerRunner<THandler, T> : HandlerRunner
    where THandler : class, IMessageHandler<T>
{
    private readonly HandlerRegistration _registration;
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly BrokerMetrics? _metrics;
    private readonly string _handlerName = typeof(THandler).Name;

    // Cancelled when the host stops: the loops take no more deliveries.
    private readonly CancellationTokenSource _reading = new();

    // Cancelled when the host's shutdown timeout runs out: the handlers still running are asked to stop.
    private readonly CancellationTokenSource _aborting = new();

    private Subscription<T>? _subscription;
    private Task[] _loops = [];
    private readonly Lock _loopsGate = new();
    private Task<HandlerTotals>? _stopping;
    private int _running;
    private int _endLogged;
    private long _handled;

    public HandlerRunner(HandlerRegistration registration, IServiceScopeFactory scopes, TimeProvider time, ILogger logger, BrokerMetrics? metrics)
    {
        _metrics = metrics;
        _registration = registration;
        _scopes = scopes;
        _time = time;
        _logger = logger;
    }

    public override async Task StartAsync(ISubscriber subscriber, CancellationToken cancellationToken)
    {
        MessageHandlerOptions options = _registration.Options;
        _subscription = await subscriber.SubscribeAsync<T>(_registration.Queue, _registration.Filters, options.Subscription, cancellationToken).ConfigureAwait(false);
        _loops = new Task[options.MaxConcurrency];
        for (int i = 0; i < _loops.Length; i++)
        {
            // Task.Run: handlers never run on the host's start-up thread.
            _loops[i] = Task.Run(ReadAsync, CancellationToken.None);
        }

        Log.HandlerStarted(_logger, _handlerName, _registration.Queue, _registration.SubscriptionName, string.Join(", ", _registration.Filters), options.MaxConcurrency);
    }

    private async Task ReadAsync()
    {
        // The loop outlives the host's start-up span, if any: a message without trace context starts its own trace.
        System.Diagnostics.Activity.Current = null;
        Subscription<T> subscription = _subscription!;
        CancellationToken reading = _reading.Token;
        Exception? error = null;
        try
        {
            // The cancellation check comes first: a wait with a cancelled token may still report a delivery ready.
            while (!reading.IsCancellationRequested && await subscription.WaitToReadAsync(reading).ConfigureAwait(false))
            {
                while (!reading.IsCancellationRequested && subscription.TryRead(out Delivery<T> delivery))
                {
                    await HandleAsync(subscription, delivery).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (reading.IsCancellationRequested)
        {
            // The host is stopping.
        }
#pragma warning disable CA1031 // The subscription ended under the host (broker disposed, taken over): log it, do not crash the host.
        catch (Exception readError) when (!reading.IsCancellationRequested)
#pragma warning restore CA1031
        {
            error = readError;
        }

        if (!reading.IsCancellationRequested && Interlocked.Exchange(ref _endLogged, 1) == 0)
        {
            // Ended under the host: the subscription's completion says why (taken over, broker disposed).
            await subscription.Completion.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            Log.SubscriptionEnded(_logger, subscription.Completion.Exception?.InnerException ?? error, _handlerName);
        }
    }

    private async Task HandleAsync(Subscription<T> subscription, Delivery<T> delivery)
    {
        Interlocked.Increment(ref _running);
        TimeSpan timeout = _registration.Options.HandlerTimeout;
        CancellationTokenSource? timer = null;
        CancellationTokenSource? linked = null;
        CancellationToken token = _aborting.Token;
        bool returned = false;
        using HandlerCall call = HandlerCall.Start(_metrics, delivery, _registration.SubscriptionName);
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            // The timeout runs on the broker's clock, so tests drive it with a manual TimeProvider.
            timer = new CancellationTokenSource(timeout, _time);
            linked = CancellationTokenSource.CreateLinkedTokenSource(token, timer.Token);
            token = linked.Token;
        }

        try
        {
            // The scope ends after the ack, so that when a scoped service is disposed the message is settled.
            AsyncServiceScope scope = _scopes.CreateAsyncScope();
            await using (scope.ConfigureAwait(false))
            {
                THandler handler = scope.ServiceProvider.GetRequiredService<THandler>();
                await handler.HandleAsync(delivery, token).ConfigureAwait(false);
                returned = true;
                call.Succeeded();

                // False when the handler settled the delivery itself; that is fine.
                await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
                Interlocked.Increment(ref _handled);
            }
        }
        catch (OperationCanceledException) when (_aborting.IsCancellationRequested)
        {
            // Cancelled because the host ran out of shutdown time: not the message's fault, so no nack. StopAsync
            // takes the delivery back without using up an attempt (IConsumer.TakeBackInFlight).
        }
#pragma warning disable CA1031 // A handler's exception is the handler's business: log it and redeliver.
        catch (Exception error)
#pragma warning restore CA1031
        {
            if (!returned)
            {
                // The handler threw (not a scoped service's clean-up after it returned).
                call.Failed(error);
            }

            Message<T> message = delivery.Message;
            if (!await HandlerFailure.NackAsync(subscription, delivery, error).ConfigureAwait(false))
            {
                // The handler (or a scoped service's clean-up) threw after the delivery was settled, or the delivery
                // was taken back at stop: nothing to redeliver, and not a failure of the message.
                if (!_aborting.IsCancellationRequested)
                {
                    Log.HandlerThrewAfterSettling(_logger, error, _handlerName, message.Id, message.Event, delivery.Attempt);
                }
            }
            else if (timer is { IsCancellationRequested: true })
            {
                Log.HandlerTimedOut(_logger, _handlerName, timeout, message.Id, message.Event, delivery.Attempt);
            }
            else if (delivery.IsLastAttempt)
            {
                Log.HandlerFailedLastAttempt(_logger, error, _handlerName, message.Id, message.Event, delivery.Attempt);
            }
            else
            {
                Log.HandlerFailed(_logger, error, _handlerName, message.Id, message.Event, delivery.Attempt);
            }
        }
        finally
        {
            linked?.Dispose();
            timer?.Dispose();
            Interlocked.Decrement(ref _running);
        }
    }

    public override Task<HandlerTotals> StopAsync(CancellationToken cancellationToken)
    {
        // Once: a second call (a host that stops twice, a failed start followed by a stop) gets the first one's result.
        lock (_loopsGate)
        {
            return _stopping ??= StopCoreAsync(cancellationToken);
        }
    }

    private async Task<HandlerTotals> StopCoreAsync(CancellationToken cancellationToken)
    {
        if (_subscription is not { } subscription)
        {
            return default;
        }

        // 1. Take no more deliveries: loops waiting for one end now, loops in a handler end when it returns.
        await _reading.CancelAsync().ConfigureAwait(false);

        // 2. What was prefetched but not yet read goes back to the subscription at once (uncounted as an attempt),
        //    rather than waiting behind the handlers still running.
        int unread = 0;
        int cutShort = 0;
        int waiting = 0;
        var consumer = subscription as IConsumer;
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
                await Task.WhenAll(_loops).WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Out of time: cancel the running handlers, and take their deliveries back without using up an
                // attempt, so that a message on its last attempt is not dead-lettered for a slow shutdown. A handler
                // that settles one afterwards gets false.
                await _aborting.CancelAsync().ConfigureAwait(false);
                cutShort = consumer?.TakeBackInFlight() ?? Volatile.Read(ref _running);
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
            await subscription.DisposeAsync().ConfigureAwait(false);
        }

        long handled = Interlocked.Read(ref _handled);
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
}
#pragma warning restore CA1001
