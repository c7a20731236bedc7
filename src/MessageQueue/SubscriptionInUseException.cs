namespace MessageQueue;

/// <summary>
/// Thrown by a subscribe when the durable subscription is exclusive and already has an active consumer:
/// the new consumer asked for <see cref="ExclusiveMode.Reject"/>, or it is a competing (non-exclusive)
/// consumer and the active one is exclusive. <see cref="HolderClient"/> names the client holding it.
/// </summary>
public sealed class SubscriptionInUseException : InvalidOperationException
{
    /// <summary>Initializes a new instance with a default message.</summary>
    public SubscriptionInUseException()
        : this("The subscription is in use.")
    {
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    public SubscriptionInUseException(string message)
        : base(message)
    {
        Queue = string.Empty;
        Subscription = string.Empty;
        HolderClient = string.Empty;
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    /// <param name="innerException">The exception that caused this one.</param>
    public SubscriptionInUseException(string message, Exception innerException)
        : base(message, innerException)
    {
        Queue = string.Empty;
        Subscription = string.Empty;
        HolderClient = string.Empty;
    }

    /// <summary>Initializes a new instance for a subscription and its holder.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="subscription">The durable subscription's name.</param>
    /// <param name="holderClient">The name of the client whose consumer holds the subscription.</param>
    /// <param name="holderClientId">That client's id.</param>
    /// <param name="message">The message that describes the error.</param>
    public SubscriptionInUseException(string queue, string subscription, string holderClient, long holderClientId, string message)
        : base(message)
    {
        Queue = queue;
        Subscription = subscription;
        HolderClient = holderClient;
        HolderClientId = holderClientId;
    }

    /// <summary>Gets the queue.</summary>
    public string Queue { get; }

    /// <summary>Gets the durable subscription's name.</summary>
    public string Subscription { get; }

    /// <summary>Gets the name of the client whose consumer holds the subscription.</summary>
    public string HolderClient { get; }

    /// <summary>Gets the id of that client.</summary>
    public long HolderClientId { get; }
}
