namespace MessageQueue;

/// <summary>How a delivery left a consumer, or what happened to it, as told to a <see cref="BrokerObserver"/>.</summary>
internal enum ObservedSettlement
{
    Acked,
    Nacked,
    Rejected,
    Extended,
    TimedOut,
    DeadLettered,
}

/// <summary>
/// Sees every step of a message's life in one broker: the test harness (MessageQueue.Testing) records through it, and
/// decides that a broker is idle by its counts. Null in production, where each hook costs one field read and a null
/// check. Calls arrive on broker threads, some under a subscription's or a consumer's lock: an observer must be quick,
/// must not block, and must never call back into the broker.
/// </summary>
internal abstract class BrokerObserver
{
    /// <summary>
    /// A message entered a queue with its sequence and was handed to <paramref name="subscriptions"/> subscriptions
    /// (0: nobody took it). Called before any consumer can see it, so it always comes before the matching
    /// <see cref="Released"/> calls.
    /// </summary>
    public abstract void Published(string queue, bool deadLetterQueue, Guid id, long sequence, string eventName, object? payload, Type payloadType, IReadOnlyDictionary<string, string> headers, int subscriptions);

    /// <summary>Messages already in a queue were handed to one more subscription (a new one starting at retained messages, or recovery).</summary>
    public abstract void Referenced(int count);

    /// <summary>One subscription let go of a message: settled, dropped, dead-lettered or abandoned it.</summary>
    public abstract void Released(string queue, Guid id);

    /// <summary>The number of messages held for delayed delivery changed.</summary>
    public abstract void Scheduled(int delta);

    /// <summary>
    /// The number of nacked deliveries of a subscription waiting out a backoff (they move again only when time passes)
    /// changed. <paramref name="subscription"/> is null for an ephemeral subscription; <paramref name="subscriptionKey"/>
    /// tells subscriptions apart, ephemeral ones included (the queue and <see cref="SubscriptionSnapshot.Id"/>).
    /// </summary>
    public abstract void Parked(string queue, string? subscription, SubscriptionKey subscriptionKey, int delta);

    /// <summary>A consumer read a delivery.</summary>
    public abstract void Delivered(string queue, string? subscription, SubscriptionKey subscriptionKey, Guid id, long sequence, string eventName, object? payload, Type payloadType, int attempt);

    /// <summary>A delivery was settled, extended, timed out, or dead-lettered (by a consumer or by the broker).</summary>
    public abstract void Settled(ObservedSettlement kind, string queue, string? subscription, SubscriptionKey? subscriptionKey, Guid id, long sequence, string eventName, object? payload, Type payloadType, int attempt, TimeSpan? delay, string? reason);
}
