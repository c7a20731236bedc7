namespace MessageQueue.Testing;

/// <summary>What a <see cref="MessageRecord"/> records.</summary>
public enum MessageRecordKind
{
    /// <summary>A message entered a queue (for a delayed message: when it became due), with its sequence.</summary>
    Published,

    /// <summary>A consumer read a delivery.</summary>
    Delivered,

    /// <summary>A delivery was acked (by the consumer, by a hosted handler returning, or at once under auto-ack).</summary>
    Acked,

    /// <summary>A delivery was nacked (explicitly, or because a handler threw); <see cref="MessageRecord.Delay"/> says when it comes back.</summary>
    Nacked,

    /// <summary>A delivery was rejected; it goes to the dead-letter queue.</summary>
    Rejected,

    /// <summary>A consumer extended a delivery's ack deadline.</summary>
    Extended,

    /// <summary>A delivery was not settled within its ack timeout and goes back to its subscription.</summary>
    TimedOut,

    /// <summary>A message went to its queue's dead-letter queue; <see cref="MessageRecord.Reason"/> is one of <see cref="DeadLetterReasons"/>.</summary>
    DeadLettered,

    /// <summary>A message was dropped, counted and raised (<see cref="Broker.MessageDropped"/>); <see cref="MessageRecord.Reason"/> is the <see cref="DropReason"/>.</summary>
    Dropped,
}
