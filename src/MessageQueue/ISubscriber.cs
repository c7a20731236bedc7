namespace MessageQueue;

/// <summary>Subscribes to queues. Implemented by <see cref="Broker"/> and <see cref="BrokerClient"/>.</summary>
/// <remarks>
/// <see cref="SubscriberExtensions"/> adds a single-filter form and a handler form that acks on success
/// and nacks on an exception.
/// </remarks>
public interface ISubscriber
{
    /// <summary>Attaches a consumer to <paramref name="queue"/> for events that match any of <paramref name="filters"/>.</summary>
    /// <typeparam name="T">The queue's payload type, exactly.</typeparam>
    /// <param name="queue">The queue name, or a dead-letter queue name (<see cref="Broker.GetDeadLetterQueueName"/>).</param>
    /// <param name="filters">One or more filters: event names, with <c>*</c> for exactly one word and <c>#</c> for zero or more words.</param>
    /// <param name="options">The durable name, MaxInFlight and ack mode; <see langword="null"/> for defaults.</param>
    /// <param name="cancellationToken">A token that cancels the call.</param>
    /// <returns>The subscription to read deliveries from. Dispose it to detach.</returns>
    /// <exception cref="ArgumentException">A name or filter is invalid, there are no filters, the options are invalid, or <typeparamref name="T"/> is not the queue's type.</exception>
    /// <exception cref="InvalidOperationException">A durable subscription of that name exists with other filters.</exception>
    /// <exception cref="QueueNotFoundException">The queue does not exist and the broker does not declare queues on first use.</exception>
    /// <exception cref="ObjectDisposedException">The broker or client was disposed.</exception>
    ValueTask<Subscription<T>> SubscribeAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options = null, CancellationToken cancellationToken = default);
}
