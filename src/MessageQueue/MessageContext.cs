namespace MessageQueue;

/// <summary>
/// What every message of one queue shares: the queue's name, and the random prefix its ids are made from
/// (<see cref="MessageIds"/>). A message that holds this has no headers, no expiry and an id made from its sequence.
/// </summary>
internal sealed class MessageOrigin(string queue, MessageIds ids)
{
    public string Queue { get; } = queue;

    public MessageIds Ids { get; } = ids;
}

/// <summary>
/// What a message holds beside its envelope when it has more than its queue's defaults: headers, a time to live, or an
/// id of its own (the publisher's, or one read back from a store). Rare on the hot path, so it lives out of the envelope.
/// </summary>
internal sealed class MessageExtras(string queue, Guid id, IReadOnlyDictionary<string, string> headers, long expiresAtTicks)
{
    public string Queue { get; } = queue;

    public Guid Id { get; } = id;

    public IReadOnlyDictionary<string, string> Headers { get; } = headers;

    /// <summary>UTC ticks; 0 if the message never expires.</summary>
    public long ExpiresAtTicks { get; } = expiresAtTicks;
}
