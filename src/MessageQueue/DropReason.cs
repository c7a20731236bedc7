namespace MessageQueue;

/// <summary>Why a message was dropped. See <see cref="Broker.MessageDropped"/>.</summary>
public enum DropReason
{
    /// <summary>The queue was full and its overflow policy is <see cref="OverflowPolicy.DropOldest"/>.</summary>
    QueueOverflow = 0,

    /// <summary>
    /// A message that would have been dead-lettered (rejected, or out of deliveries) where there is no
    /// dead-letter queue: in a dead-letter queue itself, or in a queue declared with
    /// <see cref="QueueOptions.DeadLetters"/> off.
    /// </summary>
    DeadLetterDiscarded = 1,

    /// <summary>The message expired (<see cref="PublishOptions.TimeToLive"/>) in a queue without a dead-letter queue.</summary>
    Expired = 2,
}
