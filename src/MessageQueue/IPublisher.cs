namespace MessageQueue;

/// <summary>Publishes messages. Implemented by <see cref="Broker"/> and <see cref="BrokerClient"/>.</summary>
public interface IPublisher
{
    /// <summary>
    /// Publishes <paramref name="payload"/> to <paramref name="queue"/> under <paramref name="eventName"/>. The
    /// message goes to every subscription of the queue whose filters match the event.
    /// </summary>
    /// <typeparam name="T">The payload type; it must be the queue's payload type or convert to it.</typeparam>
    /// <param name="queue">The queue name.</param>
    /// <param name="eventName">The event name: dot-separated words, such as <c>"delete"</c> or <c>"ep42.results"</c>.</param>
    /// <param name="payload">The payload; not <see langword="null"/> (for an event with no data, publish an empty record). Shared by every subscriber, so prefer immutable types.</param>
    /// <param name="options">Headers and a timeout for this publish.</param>
    /// <param name="cancellationToken">A token that cancels a publish that waits for room.</param>
    /// <returns>The receipt, once the message is enqueued.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="queue"/>, <paramref name="eventName"/> or <paramref name="payload"/> is null (a null payload is a null reference or a nullable value type without a value); nothing is published.</exception>
    /// <exception cref="ArgumentException">A name is invalid, or the payload type does not fit the queue.</exception>
    /// <exception cref="QueueFullException">The queue is full and its overflow policy rejects, or stayed full for the whole timeout.</exception>
    /// <exception cref="QueueNotFoundException">The queue does not exist and the broker does not declare queues on first use.</exception>
    /// <exception cref="ObjectDisposedException">The broker or client was disposed.</exception>
    ValueTask<PublishReceipt> PublishAsync<T>(string queue, string eventName, T payload, PublishOptions options = default, CancellationToken cancellationToken = default);
}
