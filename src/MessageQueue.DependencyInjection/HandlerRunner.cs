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
    private readonly string _handlerName = typeof(THandler).Name;

    // Cancelled when the host stops: the loops take no more deliveries.
    private readonly CancellationTokenSource _reading = new();

    // Cancelled when the host's shutdown timeout runs out: the handlers still running are asked to stop.
    private readonly CancellationTokenSource _aborting = new();

    private Subscription<T>? _subscription;
    private Task[] _loops = [];
    private int _running;
    private long _handled;

    public HandlerRunner(HandlerRegistration registration, IServiceScopeFactory scopes, TimeProvider time, ILogger logger)
    {
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
        Subscription<T> subscription = _subscription!;
        CancellationToken reading = _reading.Token;
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

            if (!reading.IsCancellationRequested)
            {
                Log.SubscriptionEnded(_logger, null, _handlerName);
            }
        }
        catch (OperationCanceledException) when (reading.IsCancellationRequested)
        {
            // The host is stopping.
        }
#pragma warning disable CA1031 // The subscription ended under the host (broker disposed, taken over): log it, do not crash the host.
        catch (Exception error) when (!reading.IsCancellationRequested)
#pragma warning restore CA1031
        {
            Log.SubscriptionEnded(_logger, error, _handlerName);
        }
    }

    private async Task HandleAsync(Subscription<T> subscription, Delivery<T> delivery)
    {
        Interlocked.Increment(ref _running);
        TimeSpan timeout = _registration.Options.HandlerTimeout;
        CancellationTokenSource? timer = null;
        CancellationTokenSource? linked = null;
        CancellationToken token = _aborting.Token;
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

                // False when the handler settled the delivery itself; that is fine.
                await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
                Interlocked.Increment(ref _handled);
            }
        }
        catch (OperationCanceledException) when (_aborting.IsCancellationRequested)
        {
            // Cancelled because the host ran out of shutdown time: not the message's fault, so no nack and no
            // attempt spent. It stays unsettled and goes back to the durable subscription when the runner detaches.
        }
#pragma warning disable CA1031 // A handler's exception is the handler's business: log it and redeliver.
        catch (Exception error)
#pragma warning restore CA1031
        {
            Message<T> message = delivery.Message;
            if (timer is { IsCancellationRequested: true })
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

            await HandlerFailure.NackAsync(subscription, delivery, error).ConfigureAwait(false);
        }
        finally
        {
            linked?.Dispose();
            timer?.Dispose();
            Interlocked.Decrement(ref _running);
        }
    }

    public override async Task<HandlerTotals> StopAsync(CancellationToken cancellationToken)
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
        var consumer = subscription as IConsumer;
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
            int running = Volatile.Read(ref _running);
            await _aborting.CancelAsync().ConfigureAwait(false);
            if (running > 0)
            {
                // (With none running, the loops were only on their way out when the time ran out.)
                Log.HandlersCancelledAtStop(_logger, running, _handlerName, _registration.SubscriptionName);
            }
        }

        // 4. Detach. Whatever is still unsettled (a handler that did not finish, a nack waiting out its delay)
        //    goes back to the durable subscription, and stays in the store for the next start.
        int unsettled = consumer?.GetSnapshot().InFlight ?? Volatile.Read(ref _running);
        await subscription.DisposeAsync().ConfigureAwait(false);

        long handled = Interlocked.Read(ref _handled);
        Log.HandlerStopped(_logger, _handlerName, handled, unread, unsettled, _registration.SubscriptionName);
        return new HandlerTotals(handled, unread + unsettled);
    }
}
#pragma warning restore CA1001
