namespace MessageQueue;

/// <summary>One consumer a client has attached, in a <see cref="ClientSnapshot"/>.</summary>
public sealed record ConsumerSnapshot
{
    /// <summary>Gets the queue name.</summary>
    public required string Queue { get; init; }

    /// <summary>
    /// Tells subscriptions apart, ephemeral ones (which have no name) included: the same value in every snapshot of one
    /// subscription, and in what the broker tells its observer (the test harness). A value, so a kept snapshot holds
    /// nothing of the live subscription.
    /// </summary>
    internal SubscriptionKey Key { get; init; }

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
        return printer.Printed;
    }
}
