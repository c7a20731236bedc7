namespace MessageQueue;

/// <summary>What a broker holds at one moment. Returned by <see cref="Broker.GetSnapshot"/>.</summary>
public sealed record BrokerSnapshot
{
    /// <summary>Gets when the snapshot was taken, from the broker's <see cref="TimeProvider"/>.</summary>
    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>Gets every queue, dead-letter queues included, ordered by name.</summary>
    public required IReadOnlyList<QueueSnapshot> Queues { get; init; }

    /// <summary>
    /// Gets every connected client. The first is the broker's own, named <c>$broker</c>: it publishes and subscribes for the
    /// calls made on the <see cref="Broker"/> itself. No other client's name starts with <c>$</c>.
    /// </summary>
    public required IReadOnlyList<ClientSnapshot> Clients { get; init; }

    /// <summary>Gets how many times a <see cref="Broker.MessageDropped"/> handler threw.</summary>
    public long EventHandlerFailures { get; init; }

    /// <summary>Gets the type and message of the last exception a <see cref="Broker.MessageDropped"/> handler threw, or null if none did.</summary>
    public string? LastEventHandlerFailure { get; init; }

    /// <summary>Returns the queue called <paramref name="name"/>.</summary>
    /// <param name="name">The queue name.</param>
    /// <returns>The queue's snapshot.</returns>
    /// <exception cref="KeyNotFoundException">There is no such queue.</exception>
    public QueueSnapshot Queue(string name)
    {
        foreach (QueueSnapshot queue in Queues)
        {
            if (queue.Name == name)
            {
                return queue;
            }
        }

        throw new KeyNotFoundException($"The snapshot has no queue '{name}'.");
    }

    /// <summary>Prints the members as the compiler would, and lists by their contents rather than their type name.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        var printer = new SnapshotPrinter(builder);
        printer.Member(nameof(Timestamp), Timestamp);
        printer.List(nameof(Queues), Queues);
        printer.List(nameof(Clients), Clients);
        printer.Member(nameof(EventHandlerFailures), EventHandlerFailures);
        printer.Member(nameof(LastEventHandlerFailure), LastEventHandlerFailure);
        return printer.Printed;
    }
}
