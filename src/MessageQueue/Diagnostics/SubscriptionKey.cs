namespace MessageQueue;

/// <summary>
/// Tells subscriptions apart, ephemeral ones (which have no name) included: the queue and the subscription's number in
/// it. A value, so a snapshot that carries it holds nothing of the live subscription.
/// </summary>
/// <param name="Queue">The queue's name.</param>
/// <param name="Id">The subscription's number in its queue, increasing with creation.</param>
internal readonly record struct SubscriptionKey(string Queue, long Id);
