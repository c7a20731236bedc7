namespace MessageQueue;

/// <summary>The untyped face of a <see cref="Consumer{T}"/>, for its client and the broker's shutdown.</summary>
internal interface IConsumer
{
    /// <summary>Shutdown step 1: no new deliveries.</summary>
    void StopDelivering();

    /// <summary>Shutdown step 2: unread deliveries go back to the subscription; readers finish what they hold.</summary>
    int TakeBackUnread();

    /// <summary>
    /// A hosted handler's shutdown timed out: deliveries read and not settled go back to the subscription without
    /// using up an attempt. Returns how many.
    /// </summary>
    int TakeBackInFlight();

    /// <summary>Shutdown step 3: completes when everything the consumer read is settled.</summary>
    Task WhenDrained();

    /// <summary>Shutdown step 4, or an owner's dispose: detach for good.</summary>
    void Detach(Exception? fault);

    ConsumerSnapshot GetSnapshot();

    /// <summary>An exception naming this consumer's queue and subscription, to fault its completion with.</summary>
    SubscriptionClosedException CreateClosedException(SubscriptionCloseReason reason, string message);

    /// <summary>The queue the consumer reads, for the guard against a handler waiting on its own queue.</summary>
    BrokerQueue OwnerQueue { get; }
}
