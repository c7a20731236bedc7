namespace MessageQueue;

/// <summary>One connected client in a <see cref="BrokerSnapshot"/>.</summary>
public sealed record ClientSnapshot
{
    /// <summary>Gets the client's id.</summary>
    public long Id { get; init; }

    /// <summary>Gets the client's name.</summary>
    public required string Name { get; init; }

    /// <summary>Gets the consumers the client has attached, ordered by queue.</summary>
    public required IReadOnlyList<ConsumerSnapshot> Consumers { get; init; }

    /// <summary>Prints the members as the compiler would, and lists by their contents rather than their type name.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        var printer = new SnapshotPrinter(builder);
        printer.Member(nameof(Id), Id);
        printer.Member(nameof(Name), Name);
        printer.List(nameof(Consumers), Consumers);
        return printer.Printed;
    }
}
