namespace MessageQueue;

/// <summary>
/// The fault of a <see cref="Subscription.Completion"/> when the consumer was detached without its owner
/// asking: the broker was disposed, another consumer took over, or the subscription was cut loose as a slow
/// consumer. <see cref="Reason"/> says which.
/// </summary>
public sealed class SubscriptionClosedException : InvalidOperationException
{
    /// <summary>Initializes a new instance with a default message.</summary>
    public SubscriptionClosedException()
        : this("The subscription was closed.")
    {
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    public SubscriptionClosedException(string message)
        : base(message)
    {
        Queue = string.Empty;
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    /// <param name="innerException">The exception that caused this one.</param>
    public SubscriptionClosedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Queue = string.Empty;
    }

    /// <summary>Initializes a new instance for a subscription.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="subscription">The durable subscription's name, or <see langword="null"/> for an ephemeral one.</param>
    /// <param name="reason">Why the consumer was detached.</param>
    /// <param name="message">The message that describes the error.</param>
    public SubscriptionClosedException(string queue, string? subscription, SubscriptionCloseReason reason, string message)
        : base(message)
    {
        Queue = queue;
        Subscription = subscription;
        Reason = reason;
    }

    /// <summary>Gets the queue of the subscription.</summary>
    public string Queue { get; }

    /// <summary>Gets the durable subscription's name, or <see langword="null"/> for an ephemeral one.</summary>
    public string? Subscription { get; }

    /// <summary>Gets why the consumer was detached.</summary>
    public SubscriptionCloseReason Reason { get; }
}
