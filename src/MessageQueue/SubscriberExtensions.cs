namespace MessageQueue;

/// <summary>Convenience forms of <see cref="ISubscriber.SubscribeAsync{T}"/>.</summary>
public static class SubscriberExtensions
{
    /// <summary>Attaches a consumer to <paramref name="queue"/> for events that match <paramref name="filter"/>.</summary>
    /// <typeparam name="T">The queue's payload type.</typeparam>
    /// <param name="subscriber">The broker or client.</param>
    /// <param name="queue">The queue name.</param>
    /// <param name="filter">An event name, with <c>*</c> for exactly one word and <c>#</c> for zero or more words.</param>
    /// <param name="options">The durable name, MaxInFlight and ack mode; <see langword="null"/> for defaults.</param>
    /// <param name="cancellationToken">A token that cancels the call.</param>
    /// <returns>The subscription to read deliveries from.</returns>
    public static ValueTask<Subscription<T>> SubscribeAsync<T>(this ISubscriber subscriber, string queue, string filter, SubscriptionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscriber);
        ArgumentNullException.ThrowIfNull(filter);
        return subscriber.SubscribeAsync<T>(queue, [filter], options, cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="handler"/> for every matching delivery, one at a time and in order. A
    /// delivery is acked when the handler returns and nacked (delivered again) when it throws; the
    /// handler may also settle the delivery itself, and the automatic settle then does nothing.
    /// </summary>
    /// <remarks>
    /// The handler runs on the thread pool, never on the caller's thread and never under a broker lock.
    /// Its cancellation token is cancelled when the subscription is disposed or ends; an exception the
    /// handler throws is counted in the subscription's snapshot and the delivery is nacked. An
    /// <see cref="OperationCanceledException"/> the handler ends with after its token was cancelled is not
    /// held against the message: it goes back to the subscription without using up an attempt.
    /// </remarks>
    /// <typeparam name="T">The queue's payload type.</typeparam>
    /// <param name="subscriber">The broker or client.</param>
    /// <param name="queue">The queue name.</param>
    /// <param name="filters">One or more filters.</param>
    /// <param name="handler">The code to run per delivery.</param>
    /// <param name="options">The durable name, MaxInFlight and ack mode; <see langword="null"/> for defaults.</param>
    /// <param name="cancellationToken">A token that cancels the call (not the handler).</param>
    /// <returns>The subscription; dispose it to stop. Disposing it, or the client it belongs to, cancels the
    /// handler's token and waits for a running handler to return.</returns>
    public static async ValueTask<Subscription> SubscribeAsync<T>(
        this ISubscriber subscriber,
        string queue,
        IEnumerable<string> filters,
        Func<Delivery<T>, CancellationToken, ValueTask> handler,
        SubscriptionOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscriber);
        ArgumentNullException.ThrowIfNull(handler);
        Subscription<T> inner = await subscriber.SubscribeAsync<T>(queue, filters, options, cancellationToken).ConfigureAwait(false);
        var subscription = new HandlerSubscription<T>(inner, handler);

        // A client waits for its handlers when it is disposed. If it was disposed meanwhile, stop now.
        if (inner is Consumer<T> consumer && !consumer.Client.TrackHandler(subscription))
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }

        return subscription;
    }

    /// <summary>Runs <paramref name="handler"/> for every delivery that matches <paramref name="filter"/>. See the overload with several filters.</summary>
    /// <typeparam name="T">The queue's payload type.</typeparam>
    /// <param name="subscriber">The broker or client.</param>
    /// <param name="queue">The queue name.</param>
    /// <param name="filter">An event name or filter.</param>
    /// <param name="handler">The code to run per delivery.</param>
    /// <param name="options">The durable name, MaxInFlight and ack mode; <see langword="null"/> for defaults.</param>
    /// <param name="cancellationToken">A token that cancels the call (not the handler).</param>
    /// <returns>The subscription; dispose it to stop.</returns>
    public static ValueTask<Subscription> SubscribeAsync<T>(
        this ISubscriber subscriber,
        string queue,
        string filter,
        Func<Delivery<T>, CancellationToken, ValueTask> handler,
        SubscriptionOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return subscriber.SubscribeAsync(queue, [filter], handler, options, cancellationToken);
    }
}
