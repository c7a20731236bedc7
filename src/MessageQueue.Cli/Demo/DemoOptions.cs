namespace MessageQueue.Cli.Demo;

/// <summary>What <c>mq demo</c> was asked to do.</summary>
internal sealed record DemoOptions
{
    public const int MinCount = 1;
    public const int MaxCount = 1000;

    /// <summary>Gets how many messages the publisher sends per batch. The default is 6.</summary>
    public int Count { get; init; } = 6;

    /// <summary>Gets the seed that picks each message's event and row, so that a run can be repeated. The default is 42.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>
    /// Gets how long the scenario may wait, in all, for deliveries it expects. A correct broker needs a
    /// few milliseconds; the limit only turns a lost message into a failed run instead of a hang.
    /// The default is 10 seconds.
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets the SQLite store file the queue is kept in, or null to keep everything in memory. With a store the
    /// run ends by leaving a batch for the auditor, and the next run starts by catching up on it. The default is null.
    /// </summary>
    public string? StorePath { get; init; }

    public void Validate()
    {
        if (Count is < MinCount or > MaxCount)
        {
            throw new ArgumentOutOfRangeException(nameof(Count), Count, $"Count must be between {MinCount} and {MaxCount}.");
        }

        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, "Timeout must be positive.");
        }
    }
}
