namespace MessageQueue;

/// <summary>Values of the <see cref="MessageHeaders.DeadLetterReason"/> header.</summary>
public static class DeadLetterReasons
{
    /// <summary>A consumer rejected the delivery with <see cref="Delivery{T}.RejectAsync"/>.</summary>
    public const string Rejected = "rejected";

    /// <summary>The message was delivered <see cref="SubscriptionOptions.MaxDeliveries"/> times and never acked.</summary>
    public const string MaxDeliveries = "max-deliveries";

    /// <summary>The message's time to live ran out before it was read (<see cref="PublishOptions.TimeToLive"/>).</summary>
    public const string Expired = "expired";

    /// <summary>
    /// The message was dropped for lack of room (<see cref="OverflowPolicy.DropOldest"/>, a subscription's
    /// <see cref="SubscriptionOptions.MaxBacklog"/>) from a queue declared with <see cref="QueueOptions.DeadLetterDrops"/>.
    /// </summary>
    public const string Overflow = "overflow";
}
