namespace MessageQueue;

/// <summary>
/// The subscriptions one event name routes to, ordered by id (the order publishers lock them in), as of one version of
/// a queue's subscription set. Immutable: a route that went stale is replaced, never changed.
/// </summary>
internal sealed class Route<T>(string eventName, SubscriptionState<T>[] subscriptions, int version)
{
    public string Event { get; } = eventName;

    public SubscriptionState<T>[] Subscriptions { get; } = subscriptions;

    public int Version { get; } = version;
}
