namespace MessageQueue;

/// <summary>One connected client in a <see cref="BrokerSnapshot"/>.</summary>
public sealed record ClientSnapshot
{
    /// <summary>Gets the client's id.</summary>
    public long Id { get; init; }

    /// <summary>Gets the client's name.</summary>
    public required string Name { get; init; }

    /// <summary>Gets the consumers the client has attached, ordered by queue.</summary>
    public required IReadOnlyList<ConsumerSnapshot> Subscriptions { get; init; }
}
