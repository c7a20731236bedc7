namespace MessageQueue.Persistence;

/// <summary>Everything a store holds for one queue, as <see cref="IMessageStore.Load"/> reads it back.</summary>
/// <param name="Name">The queue.</param>
/// <param name="LastSequence">The highest sequence ever appended to it, even if that message is gone.</param>
/// <param name="Messages">Its messages, in sequence order.</param>
/// <param name="Scheduled">Its messages held for delayed delivery, in the order they were scheduled.</param>
/// <param name="Subscriptions">Its durable subscriptions.</param>
/// <param name="DeduplicationIds">The message ids it remembers to drop duplicates, with their sequence and until when.</param>
public sealed record StoredQueueState(
    string Name,
    long LastSequence,
    IReadOnlyList<StoredMessage> Messages,
    IReadOnlyList<StoredMessage> Scheduled,
    IReadOnlyList<StoredSubscriptionState> Subscriptions,
    IReadOnlyList<StoredId> DeduplicationIds);
