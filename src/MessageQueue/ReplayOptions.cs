namespace MessageQueue;

/// <summary>Which dead letters <see cref="Broker.ReplayDeadLettersAsync"/> moves back, and how many.</summary>
public readonly record struct ReplayOptions
{
    /// <summary>
    /// Gets an event filter (the same grammar as subscription filters) that a dead letter's event must match,
    /// or <see langword="null"/> for every dead letter.
    /// </summary>
    public string? Filter { get; init; }

    /// <summary>Gets the most dead letters to move, or <see langword="null"/> for all of them. Must be at least 1.</summary>
    public int? MaxMessages { get; init; }
}
