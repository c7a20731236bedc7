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

    /// <summary>
    /// A queue with <see cref="RetentionPolicy.Limits"/> retention (a dead-letter queue among them) evicted its
    /// oldest message to stay within <see cref="QueueOptions.MaxMessages"/> or <see cref="QueueOptions.MaxAge"/>.
    /// When a subscription had not read it yet, the event names that subscription: it fell behind retention,
    /// and its next delivery shows the jump in sequence.
    /// </summary>
    RetentionLimit = 3,

    /// <summary>
    /// A subscription fell further behind than its <see cref="SubscriptionOptions.MaxBacklog"/>: with
    /// <see cref="BacklogOverflowPolicy.DropOldest"/> its oldest waiting message was dropped; with
    /// <see cref="BacklogOverflowPolicy.Disconnect"/> it was cut loose and everything it held was dropped.
    /// </summary>
    SubscriptionOverflow = 4,
}
