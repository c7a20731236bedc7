namespace MessageQueue.DependencyInjection;

/// <summary>
/// Handles the messages of one subscription in a hosted service. Register an implementation with
/// <c>services.AddMessageHandler&lt;THandler, T&gt;(queue, filter)</c>.
/// </summary>
/// <typeparam name="T">The queue's payload type.</typeparam>
/// <remarks>
/// <para>Each message gets its own DI scope, and the handler is resolved from it, so a handler can take scoped
/// services (a DbContext, a unit of work) in its constructor. The scope is disposed after the delivery is settled.</para>
/// <para>Returning acks the delivery. Throwing nacks it: it is delivered again after the subscription's backoff
/// delay (<see cref="SubscriptionOptions.RedeliveryDelays"/>), and after <see cref="SubscriptionOptions.MaxDeliveries"/>
/// attempts it goes to the dead-letter queue. A handler may also settle the delivery itself (for example
/// <see cref="Delivery{T}.RejectAsync(string?, CancellationToken)"/> for a message it can never process); the
/// host's ack after it returns then does nothing.</para>
/// </remarks>
public interface IMessageHandler<T>
{
    /// <summary>Handles one delivery.</summary>
    /// <param name="delivery">The delivery: its message, attempt number and settle operations.</param>
    /// <param name="cancellationToken">Cancelled when the handler's timeout
    /// (<see cref="MessageHandlerOptions.HandlerTimeout"/>) passes, or when the host's shutdown timeout runs out
    /// while the handler is still running.</param>
    /// <returns>A task that completes when the message is handled.</returns>
    ValueTask HandleAsync(Delivery<T> delivery, CancellationToken cancellationToken);
}
