namespace MessageQueue;

/// <summary>One consumer a client has attached, in a <see cref="ClientSnapshot"/>.</summary>
public sealed record ConsumerSnapshot
{
    /// <summary>Gets the queue name.</summary>
    public required string Queue { get; init; }

    /// <summary>Gets the <see cref="SubscriptionSnapshot.Id"/> of the subscription the consumer is attached to.</summary>
    public long SubscriptionId { get; init; }

    /// <summary>The queue and <see cref="SubscriptionId"/>, as the broker tells its observer (the test harness). Computed, so not part of equality.</summary>
    internal SubscriptionKey Key => new(Queue, SubscriptionId);

    /// <summary>Gets the durable subscription's name, or <see langword="null"/> for an ephemeral one.</summary>
    public string? Subscription { get; init; }

    /// <summary>Gets the event filters.</summary>
    public required IReadOnlyList<string> Filters { get; init; }

    /// <summary>Gets how many deliveries the consumer holds unsettled.</summary>
    public int InFlight { get; init; }

    /// <summary>Gets the consumer's in-flight limit.</summary>
    public int MaxInFlight { get; init; }

    /// <summary>Gets whether deliveries are acked as soon as they are read.</summary>
    public bool AutoAck { get; init; }

    /// <summary>Gets whether the consumer waits as a standby to take over an exclusive subscription.</summary>
    public bool IsStandby { get; init; }

    /// <summary>Prints the members as the compiler would, and lists by their contents rather than their type name.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        var printer = new SnapshotPrinter(builder);
        printer.Member(nameof(Queue), Queue);
        printer.Member(nameof(Subscription), Subscription);
        printer.List(nameof(Filters), Filters);
        printer.Member(nameof(InFlight), InFlight);
        printer.Member(nameof(MaxInFlight), MaxInFlight);
        printer.Member(nameof(AutoAck), AutoAck);
        printer.Member(nameof(IsStandby), IsStandby);
        printer.Member(nameof(SubscriptionId), SubscriptionId);
        return printer.Printed;
    }
}
