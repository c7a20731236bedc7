namespace MessageQueue.Persistence;

/// <summary>What a <see cref="StoreOperation"/> does.</summary>
public enum StoreOperationKind
{
    /// <summary>
    /// Keep <see cref="StoreOperation.Message"/>, and remember its queue's sequence; with a deduplication time,
    /// remember its id until then. With a <see cref="StoredMessage.DueAt"/>, it is a held message entering its
    /// queue: forget the held copy with its id (<see cref="Schedule"/>) in the same step.
    /// </summary>
    Append = 0,

    /// <summary>The durable subscription <see cref="StoreOperation.Subscription"/> settled message <see cref="StoreOperation.Sequence"/>; other subscriptions may still hold it.</summary>
    Ack = 1,

    /// <summary>Message <see cref="StoreOperation.Sequence"/> is gone (settled everywhere, evicted or dropped): forget it and everything about it.</summary>
    Remove = 2,

    /// <summary>Message <see cref="StoreOperation.Sequence"/> was delivered <see cref="StoreOperation.Deliveries"/> times to the subscription, and came back.</summary>
    SetDeliveries = 3,

    /// <summary>The subscription has been delivered every message up to <see cref="StoreOperation.Sequence"/> at least once.</summary>
    SetCursor = 4,

    /// <summary>Keep (or replace) the durable subscription <see cref="StoreOperation.DurableSubscription"/>.</summary>
    SaveSubscription = 5,

    /// <summary>Forget the durable subscription <see cref="StoreOperation.Subscription"/> and what it acked.</summary>
    DeleteSubscription = 6,

    /// <summary>Keep <see cref="StoreOperation.Message"/>, held for delayed delivery (it has no sequence yet).</summary>
    Schedule = 7,

    /// <summary>The held message <see cref="StoreOperation.MessageId"/> entered its queue (or was dropped): forget it.</summary>
    Unschedule = 8,

    /// <summary>Forget the queue's deduplication ids remembered until <see cref="StoreOperation.Time"/> or earlier.</summary>
    ForgetIds = 9,

    /// <summary>
    /// A publish took sequence <see cref="StoreOperation.Sequence"/> and stored no message (it matched no subscription): the
    /// store keeps it as the queue's last sequence if it is higher, so no later broker hands it out again.
    /// </summary>
    SequenceTaken = 10,
}
