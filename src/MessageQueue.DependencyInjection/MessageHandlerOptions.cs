namespace MessageQueue.DependencyInjection;

/// <summary>Options for a hosted message handler registered with <c>AddMessageHandler</c>.</summary>
/// <remarks>Validated with the broker's options when the host starts; every problem is reported at once.</remarks>
public sealed class MessageHandlerOptions
{
    /// <summary>Gets or sets how many messages the handler processes at the same time.</summary>
    /// <value>
    /// The default is 1: one message at a time, in the order the subscription delivers them. With more than 1,
    /// messages are handled concurrently and finish in any order. Must be at least 1 and at most
    /// <see cref="SubscriptionOptions.MaxInFlight"/> of <see cref="Subscription"/>.
    /// </value>
    public int MaxConcurrency { get; set; } = 1;

    /// <summary>Gets or sets how long one call of the handler may run before its cancellation token is cancelled.</summary>
    /// <value>
    /// The default is <see cref="Timeout.InfiniteTimeSpan"/>: no timeout. A handler that throws after its token was
    /// cancelled by the timeout counts as failed, and the message is nacked. The timeout must not be longer than
    /// the subscription's <see cref="SubscriptionOptions.AckTimeout"/>, or the message would be delivered again
    /// while the handler still runs.
    /// </value>
    public TimeSpan HandlerTimeout { get; set; } = Timeout.InfiniteTimeSpan;

    /// <summary>Gets or sets the options of the handler's subscription: prefetch, ack deadline, backoff schedule, attempts.</summary>
    /// <value>
    /// The default is a new <see cref="SubscriptionOptions"/>. A hosted handler's subscription is always durable,
    /// so that what is published while the host is stopped or stopping waits for it; its
    /// <see cref="SubscriptionOptions.Name"/> is the name given to <c>AddMessageHandler</c>, or else the handler
    /// type's name. <see cref="SubscriptionOptions.AutoAck"/> must stay <see langword="false"/>: the host acks
    /// when the handler returns. For strict order across retries set <see cref="SubscriptionOptions.MaxInFlight"/>
    /// to 1.
    /// </value>
    public SubscriptionOptions Subscription { get; set; } = new();
}
