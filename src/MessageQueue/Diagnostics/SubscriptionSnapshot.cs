namespace MessageQueue;

/// <summary>One subscription in a <see cref="QueueSnapshot"/>.</summary>
public sealed record SubscriptionSnapshot
{
    /// <summary>Gets the queue name.</summary>
    public required string Queue { get; init; }

    /// <summary>
    /// Gets the subscription's number in its queue, increasing with creation: the same in every snapshot of one
    /// subscription, so it tells subscriptions apart, ephemeral ones (which have no name) included. A durable
    /// subscription keeps its number while the broker runs, whoever is attached.
    /// </summary>
    public long Id { get; init; }

    /// <summary>The queue and <see cref="Id"/>, as the broker tells its observer (the test harness). Computed, so not part of equality.</summary>
    internal SubscriptionKey Key => new(Queue, Id);

    /// <summary>Gets the durable name, or <see langword="null"/> for an ephemeral subscription.</summary>
    public string? Name { get; init; }

    /// <summary>Gets whether the subscription is durable.</summary>
    public bool IsDurable { get; init; }

    /// <summary>Gets the event filters.</summary>
    public required IReadOnlyList<string> Filters { get; init; }

    /// <summary>Gets how many consumers are attached and active.</summary>
    public int Consumers { get; init; }

    /// <summary>Gets how many consumers wait as standbys to take over an exclusive subscription (<see cref="ExclusiveMode.Standby"/>).</summary>
    public int Standby { get; init; }

    /// <summary>Gets how many messages wait for a consumer (including ones that came back to be delivered again).</summary>
    public int Backlog { get; init; }

    /// <summary>Gets how many deliveries consumers hold unsettled.</summary>
    public int InFlight { get; init; }

    /// <summary>
    /// Gets how many deliveries were made, redeliveries included: handed to a consumer, read or waiting in its buffer to be
    /// read. One that a consumer's buffer gives back unread when the consumer leaves was never delivered and is not counted.
    /// </summary>
    public long Delivered { get; init; }

    /// <summary>Gets how many of <see cref="Delivered"/> were redeliveries (attempt 2 or later).</summary>
    public long Redelivered { get; init; }

    /// <summary>Gets how many deliveries were acked.</summary>
    public long Acked { get; init; }

    /// <summary>Gets how many deliveries were nacked.</summary>
    public long Nacked { get; init; }

    /// <summary>Gets how many deliveries went to the dead-letter queue: rejected, or out of deliveries.</summary>
    public long DeadLettered { get; init; }

    /// <summary>Gets how many deliveries passed their ack deadline and were taken back to be delivered again.</summary>
    public long TimedOut { get; init; }

    /// <summary>Gets how many messages expired before they could be delivered here, and were dead-lettered (or dropped).</summary>
    public long Expired { get; init; }

    /// <summary>Gets how many waiting messages the queue's overflow policy dropped from this subscription.</summary>
    public long Dropped { get; init; }

    /// <summary>Gets how many times a handler threw (handler-form subscriptions).</summary>
    public long HandlerFailures { get; init; }

    /// <summary>Prints the members as the compiler would, and lists by their contents rather than their type name.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        var printer = new SnapshotPrinter(builder);
        printer.Member(nameof(Queue), Queue);
        printer.Member(nameof(Name), Name);
        printer.Member(nameof(IsDurable), IsDurable);
        printer.List(nameof(Filters), Filters);
        printer.Member(nameof(Consumers), Consumers);
        printer.Member(nameof(Standby), Standby);
        printer.Member(nameof(Backlog), Backlog);
        printer.Member(nameof(InFlight), InFlight);
        printer.Member(nameof(Delivered), Delivered);
        printer.Member(nameof(Redelivered), Redelivered);
        printer.Member(nameof(Acked), Acked);
        printer.Member(nameof(Nacked), Nacked);
        printer.Member(nameof(DeadLettered), DeadLettered);
        printer.Member(nameof(TimedOut), TimedOut);
        printer.Member(nameof(Expired), Expired);
        printer.Member(nameof(Dropped), Dropped);
        printer.Member(nameof(HandlerFailures), HandlerFailures);
        printer.Member(nameof(Id), Id);
        return printer.Printed;
    }
}
