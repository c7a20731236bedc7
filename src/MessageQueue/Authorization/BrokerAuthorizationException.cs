namespace MessageQueue;

/// <summary>
/// A client was denied a publish or a subscription. Nothing was published or subscribed. The message names the client,
/// the operation, the queue, the event or filter, and why.
/// </summary>
public sealed class BrokerAuthorizationException : UnauthorizedAccessException
{
    /// <summary>Initializes a new instance.</summary>
    public BrokerAuthorizationException()
        : this("The call was denied by the broker's authorization.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">The message.</param>
    public BrokerAuthorizationException(string message)
        : base(message)
    {
        Client = string.Empty;
        Queue = string.Empty;
        Event = string.Empty;
    }

    /// <summary>Initializes a new instance with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The inner exception (a custom authorizer's failure, say).</param>
    public BrokerAuthorizationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Client = string.Empty;
        Queue = string.Empty;
        Event = string.Empty;
    }

    /// <summary>Initializes a new instance describing the denied call.</summary>
    /// <param name="client">The client.</param>
    /// <param name="operation">The operation.</param>
    /// <param name="queue">The queue.</param>
    /// <param name="eventName">The event name, or the filter.</param>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The inner exception, if any.</param>
    public BrokerAuthorizationException(string client, BrokerOperation operation, string queue, string eventName, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Client = client;
        Operation = operation;
        Queue = queue;
        Event = eventName;
    }

    /// <summary>Gets the denied client's name.</summary>
    public string Client { get; }

    /// <summary>Gets the denied operation.</summary>
    public BrokerOperation Operation { get; }

    /// <summary>Gets the queue.</summary>
    public string Queue { get; }

    /// <summary>Gets the event name of a publish, or the filter of a subscription.</summary>
    public string Event { get; }
}
