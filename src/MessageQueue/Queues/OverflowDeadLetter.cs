namespace MessageQueue;

/// <summary>A message a subscription lost for lack of room, on its way to the dead-letter queue of a queue that dead-letters its drops.</summary>
/// <param name="Held">The message, with its deliveries and history.</param>
/// <param name="Subscription">The durable subscription's name, or null.</param>
/// <param name="SubscriptionKey">The subscription's identity.</param>
internal readonly record struct OverflowDeadLetter<T>(Consumer<T>.Unsettled Held, string? Subscription, SubscriptionKey SubscriptionKey);
