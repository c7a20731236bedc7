namespace MessageQueue;

/// <summary>Options for one publish.</summary>
public readonly record struct PublishOptions
{
    /// <summary>
    /// Gets the headers to publish with the message, or <see langword="null"/> for none. Immutable
    /// dictionaries are kept as they are; others are copied, so changing them afterwards has no effect.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    /// <summary>
    /// Gets how long this publish waits for room in a full queue under <see cref="OverflowPolicy.Wait"/>,
    /// or <see langword="null"/> for the queue's <see cref="QueueOptions.PublishTimeout"/>. Must be positive and
    /// at most about 24.8 days, or <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>.
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// Gets how long the message stays deliverable, counted from this publish, or <see langword="null"/> for the
    /// queue's <see cref="QueueOptions.TimeToLive"/>. An expired message is never delivered: it goes to the
    /// dead-letter queue with the reason <see cref="DeadLetterReasons.Expired"/> when it would next be read
    /// (or is dropped and counted if the queue has no dead-letter queue). Must be positive, at most about 24.8 days.
    /// </summary>
    public TimeSpan? TimeToLive { get; init; }

    /// <summary>
    /// Gets how long to hold the message before it enters the queue, or <see langword="null"/> to publish it now.
    /// A held message counts against the queue's bound but has no sequence until it enters; its
    /// <see cref="PublishReceipt.Sequence"/> is 0. Cannot be combined with <see cref="NotBefore"/>.
    /// </summary>
    public TimeSpan? DeliverAfter { get; init; }

    /// <summary>
    /// Gets the time before which the message is held, or <see langword="null"/> to publish it now. See
    /// <see cref="DeliverAfter"/>; a time in the past publishes at once.
    /// </summary>
    public DateTimeOffset? NotBefore { get; init; }

    /// <summary>
    /// Gets the message id to publish with, or <see langword="null"/> for one the broker assigns. When the
    /// queue has a <see cref="QueueOptions.DeduplicationWindow"/>, a publish whose id was already published
    /// within the window enqueues nothing and returns the first publish's receipt.
    /// </summary>
    public Guid? MessageId { get; init; }
}
