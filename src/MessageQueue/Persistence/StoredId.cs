namespace MessageQueue.Persistence;

/// <summary>A remembered message id, for deduplication (<see cref="StoredQueueState.DeduplicationIds"/>).</summary>
/// <remarks>Two instances are equal when every member is.</remarks>
public readonly record struct StoredId
{
    /// <summary>Gets the id.</summary>
    public required Guid MessageId { get; init; }

    /// <summary>Gets the sequence of the message first published with it.</summary>
    public required long Sequence { get; init; }

    /// <summary>Gets until when it is remembered.</summary>
    public required DateTimeOffset Until { get; init; }
}
