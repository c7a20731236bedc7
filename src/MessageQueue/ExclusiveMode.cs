namespace MessageQueue;

/// <summary>
/// Whether a consumer shares its durable subscription with others, and what it does when another consumer
/// is already active. See <see cref="SubscriptionOptions.Exclusive"/>.
/// </summary>
public enum ExclusiveMode
{
    /// <summary>
    /// A competing consumer: it shares the subscription's messages with the other competing consumers, each
    /// message going to one of them. Refused with <see cref="SubscriptionInUseException"/> while an exclusive
    /// consumer is active. The default.
    /// </summary>
    None = 0,

    /// <summary>The only active consumer: if another consumer is active, subscribing throws <see cref="SubscriptionInUseException"/>, naming its client.</summary>
    Reject = 1,

    /// <summary>
    /// The only active consumer: if another consumer is active, this one waits as a standby and receives
    /// nothing; when the active one leaves, the first standby takes over, and gets what the active one held
    /// unsettled again first (fail-over).
    /// </summary>
    Standby = 2,

    /// <summary>
    /// The only active consumer: the consumers active now are detached (their <see cref="Subscription.Completion"/>
    /// faults with <see cref="SubscriptionClosedException"/>, <see cref="SubscriptionCloseReason.TakenOver"/>), and
    /// what they held unsettled is delivered again to this one.
    /// </summary>
    TakeOver = 3,
}
