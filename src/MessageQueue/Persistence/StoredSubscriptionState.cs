namespace MessageQueue.Persistence;

/// <summary>A durable subscription read back from a store, with how far it got.</summary>
/// <param name="Subscription">The subscription.</param>
/// <param name="Cursor">The highest sequence it had been delivered at least once (<see cref="StoreOperationKind.SetCursor"/>).</param>
/// <param name="Acked">The sequences it settled that other subscriptions still held (<see cref="StoreOperationKind.Ack"/>).</param>
/// <param name="Deliveries">How many times each message that came back to it had been delivered (<see cref="StoreOperationKind.SetDeliveries"/>).</param>
public sealed record StoredSubscriptionState(
    StoredSubscription Subscription,
    long Cursor,
    IReadOnlySet<long> Acked,
    IReadOnlyDictionary<long, int> Deliveries);
