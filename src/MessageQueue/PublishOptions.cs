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
}
