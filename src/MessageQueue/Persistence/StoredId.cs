namespace MessageQueue.Persistence;

/// <summary>A remembered message id, for deduplication.</summary>
/// <param name="MessageId">The id.</param>
/// <param name="Sequence">The sequence of the message first published with it.</param>
/// <param name="Until">Until when it is remembered.</param>
public readonly record struct StoredId(Guid MessageId, long Sequence, DateTimeOffset Until);
