namespace MessageQueue.Persistence;

/// <summary>A message as a store keeps it: the payload is serialized bytes.</summary>
/// <param name="Queue">The queue.</param>
/// <param name="Sequence">The message's sequence in its queue; 0 for a message held for delayed delivery.</param>
/// <param name="Id">The message id.</param>
/// <param name="Event">The event name.</param>
/// <param name="Payload">The payload, serialized by the queue's payload serializer.</param>
/// <param name="Headers">The headers.</param>
/// <param name="Timestamp">When it was published.</param>
/// <param name="ExpiresAt">When it expires, if it has a time to live.</param>
/// <param name="DueAt">When it enters its queue, if it was published for delayed delivery.</param>
/// <param name="DeduplicateUntil">Until when its id is remembered to drop duplicates, if it was published with a message id into a queue with a deduplication window.</param>
public sealed record StoredMessage(
    string Queue,
    long Sequence,
    Guid Id,
    string Event,
    ReadOnlyMemory<byte> Payload,
    IReadOnlyDictionary<string, string> Headers,
    DateTimeOffset Timestamp,
    DateTimeOffset? ExpiresAt = null,
    DateTimeOffset? DueAt = null,
    DateTimeOffset? DeduplicateUntil = null);
