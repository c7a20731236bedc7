namespace MessageQueue;

/// <summary>Why a consumer was detached without its owner asking. See <see cref="SubscriptionClosedException"/>.</summary>
public enum SubscriptionCloseReason
{
    /// <summary>The broker was disposed.</summary>
    BrokerDisposed = 0,

    /// <summary>
    /// Another consumer subscribed with <see cref="ExclusiveMode.TakeOver"/> and replaced this one; what it held
    /// unsettled was delivered again to the new consumer.
    /// </summary>
    TakenOver = 1,

    /// <summary>
    /// The subscription fell further behind than its <see cref="SubscriptionOptions.MaxBacklog"/> with
    /// <see cref="BacklogOverflowPolicy.Disconnect"/>, and was cut loose so that the queue's other
    /// subscriptions could go on.
    /// </summary>
    CutLoose = 2,

    /// <summary>
    /// The transport lost its connection (or its channel) to the server that holds the subscription, for example
    /// RabbitMQ restarting. What the consumer held unsettled stays on the server and is delivered again.
    /// </summary>
    ConnectionLost = 3,
}
