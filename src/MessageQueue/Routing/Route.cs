namespace MessageQueue;

/// <summary>
/// The subscriptions an event name routes to, ordered by id (the order publishers lock them in), as of one version of
/// a queue's subscription set. Shared by every name that routes to the same subscriptions, and immutable: a route that
/// went stale is replaced, never changed.
/// </summary>
internal sealed class Route<T>(SubscriptionState<T>[] subscriptions, int version)
{
    public SubscriptionState<T>[] Subscriptions { get; } = subscriptions;

    public int Version { get; } = version;
}
