namespace MessageQueue;

/// <summary>
/// What happens when a subscription falls further behind than its own bound,
/// <see cref="SubscriptionOptions.MaxBacklog"/>. See <see cref="SubscriptionOptions.BacklogOverflow"/>.
/// </summary>
public enum BacklogOverflowPolicy
{
    /// <summary>
    /// The subscription's oldest waiting message is dropped to make room: counted in its snapshot and raised as
    /// <see cref="Broker.MessageDropped"/> with <see cref="DropReason.SubscriptionOverflow"/>. The other
    /// subscriptions still get it.
    /// </summary>
    DropOldest = 0,

    /// <summary>
    /// The subscription is cut loose: it ends, its consumers' <see cref="Subscription.Completion"/> faults with
    /// <see cref="SubscriptionClosedException"/> (<see cref="SubscriptionCloseReason.CutLoose"/>), and every message
    /// it held is dropped, counted and raised. The other subscriptions go on.
    /// </summary>
    Disconnect = 1,
}
