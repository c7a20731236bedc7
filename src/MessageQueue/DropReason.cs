namespace MessageQueue;

/// <summary>Why a message was dropped. See <see cref="Broker.MessageDropped"/>.</summary>
public enum DropReason
{
    /// <summary>The queue was full and its overflow policy is <see cref="OverflowPolicy.DropOldest"/>.</summary>
    QueueOverflow = 0,

    /// <summary>
    /// A dead letter was rejected, or ran out of deliveries, in a subscription to a dead-letter queue,
    /// which has no dead-letter queue of its own.
    /// </summary>
    DeadLetterDiscarded = 1,
}
