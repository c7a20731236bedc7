namespace MessageQueue;

/// <summary>How long a queue keeps its messages. See <see cref="QueueOptions.Retention"/>.</summary>
public enum RetentionPolicy
{
    /// <summary>
    /// A message is kept until every subscription it was routed to has settled it; one that matches no
    /// subscription is not kept at all. The default.
    /// </summary>
    Interest = 0,

    /// <summary>
    /// The queue keeps its newest <see cref="QueueOptions.MaxMessages"/> messages, younger than
    /// <see cref="QueueOptions.MaxAge"/>, whether or not anyone has read or acked them, so that subscriptions made
    /// later can start from an earlier point (<see cref="SubscriptionOptions.StartAt"/>). A subscription that
    /// falls behind loses the messages the queue evicts, each counted and raised as
    /// <see cref="Broker.MessageDropped"/> with <see cref="DropReason.RetentionLimit"/>.
    /// </summary>
    Limits = 1,
}
