namespace MessageQueue;

/// <summary>Describes a message that was dropped. Raised by <see cref="Broker.MessageDropped"/>.</summary>
public sealed class MessageDroppedEventArgs : EventArgs
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="queue">The queue the message was in.</param>
    /// <param name="subscription">The subscription that lost it: a durable name, <c>""</c> for an ephemeral one, or <see langword="null"/> when no subscription held it.</param>
    /// <param name="messageId">The message id.</param>
    /// <param name="sequence">The message's sequence in <paramref name="queue"/>.</param>
    /// <param name="eventName">The message's event name.</param>
    /// <param name="reason">Why it was dropped.</param>
    public MessageDroppedEventArgs(string queue, string? subscription, Guid messageId, long sequence, string eventName, DropReason reason)
    {
        Queue = queue;
        Subscription = subscription;
        MessageId = messageId;
        Sequence = sequence;
        Event = eventName;
        Reason = reason;
    }

    /// <summary>Gets the queue the message was in.</summary>
    public string Queue { get; }

    /// <summary>Gets the subscription that lost the message: a durable name, <c>""</c> for an ephemeral one, or <see langword="null"/> when no subscription held it.</summary>
    public string? Subscription { get; }

    /// <summary>Gets the message id.</summary>
    public Guid MessageId { get; }

    /// <summary>Gets the message's sequence in its queue.</summary>
    public long Sequence { get; }

    /// <summary>Gets the message's event name.</summary>
    public string Event { get; }

    /// <summary>Gets why the message was dropped.</summary>
    public DropReason Reason { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Queue}#{Sequence} ({Event}) dropped from {Subscription ?? "the queue"}: {Reason}";
}
