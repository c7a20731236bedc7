namespace MessageQueue.Cli.Demo;

/// <summary>
/// One line of the demo's accounting: what a subscriber should have received (computed from what was
/// published, with <see cref="TopicMatcher"/>) against what it did receive and ack.
/// </summary>
internal sealed record SubscriberAccount
{
    public required string Name { get; init; }

    public required IReadOnlyList<string> Filters { get; init; }

    /// <summary>Gets the durable subscription's name, or null for an ephemeral subscriber.</summary>
    public string? DurableName { get; init; }

    /// <summary>Gets the ids of the published messages that the subscriber's filters match.</summary>
    public required IReadOnlySet<Guid> MatchedIds { get; init; }

    /// <summary>Gets the distinct ids of the messages it received.</summary>
    public required IReadOnlySet<Guid> ReceivedIds { get; init; }

    /// <summary>Gets how many matched messages it acked (the broker accepted the ack).</summary>
    public int Acked { get; init; }

    /// <summary>Gets how many deliveries it read, redeliveries included.</summary>
    public int Deliveries { get; init; }

    /// <summary>Gets how many deliveries came with an attempt number above 1.</summary>
    public int LaterAttempts { get; init; }

    /// <summary>Gets how many redeliveries the scenario provokes on purpose (the auditor's unacked message).</summary>
    public int ExpectedRedeliveries { get; init; }

    public int Matched => MatchedIds.Count;

    public int Received => ReceivedIds.Count;

    /// <summary>Gets how many matched messages never arrived.</summary>
    public int Missing => MatchedIds.Count(id => !ReceivedIds.Contains(id));

    /// <summary>Gets how many messages arrived that the filters do not match.</summary>
    public int Unexpected => ReceivedIds.Count(id => !MatchedIds.Contains(id));

    /// <summary>Gets how many deliveries repeated a message already received.</summary>
    public int Redelivered => Deliveries - Received;

    public bool Balanced =>
        Missing == 0
        && Unexpected == 0
        && Acked == Matched
        && Redelivered == ExpectedRedeliveries
        && LaterAttempts == ExpectedRedeliveries;

    /// <summary>Builds the account of <paramref name="log"/> against everything that was published.</summary>
    public static SubscriberAccount Compute(SubscriberLog log, IEnumerable<PublishedMessage> published, int expectedRedeliveries)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(published);
        var matched = published
            .Where(message => TopicMatcher.MatchesAny(log.Filters, message.Event))
            .Select(message => message.MessageId)
            .ToHashSet();
        return new SubscriberAccount
        {
            Name = log.Name,
            Filters = log.Filters,
            DurableName = log.DurableName,
            MatchedIds = matched,
            ReceivedIds = log.ReceivedIds,
            Acked = log.AckedIds.Count(matched.Contains),
            Deliveries = log.Deliveries,
            LaterAttempts = log.LaterAttempts,
            ExpectedRedeliveries = expectedRedeliveries,
        };
    }

    /// <summary>Describes what is wrong with this account, or nothing when it balances.</summary>
    public IEnumerable<string> DescribeProblems()
    {
        if (Missing > 0)
        {
            yield return $"{Name} is missing {Missing} of {Matched} matched message(s)";
        }

        if (Unexpected > 0)
        {
            yield return $"{Name} received {Unexpected} message(s) its filters do not match";
        }

        if (Acked != Matched)
        {
            yield return $"{Name} acked {Acked} of {Matched} matched message(s)";
        }

        if (Redelivered != ExpectedRedeliveries || LaterAttempts != ExpectedRedeliveries)
        {
            yield return $"{Name} got {Redelivered} repeated deliveries ({LaterAttempts} with attempt > 1); the scenario expects {ExpectedRedeliveries}";
        }
    }
}
