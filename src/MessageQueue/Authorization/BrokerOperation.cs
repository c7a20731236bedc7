namespace MessageQueue;

/// <summary>What a client asks to do, for authorization.</summary>
public enum BrokerOperation
{
    /// <summary>Publish a message with an event name to a queue.</summary>
    Publish,

    /// <summary>Subscribe to a queue with a filter.</summary>
    Subscribe,
}
