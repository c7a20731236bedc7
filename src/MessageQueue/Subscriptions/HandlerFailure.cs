namespace MessageQueue;

/// <summary>
/// What every handler host (the handler form of SubscribeAsync, and the hosted handlers of
/// MessageQueue.DependencyInjection) does when a handler throws.
/// </summary>
internal static class HandlerFailure
{
    /// <summary>
    /// Nacks: redelivered after the backoff delay, or dead-lettered on the last attempt; keeps the error in the
    /// message's history (so a dead letter says why) and counts the failure in the subscription's snapshot.
    /// Returns <see langword="false"/>, counting nothing, when the delivery was already settled.
    /// </summary>
    public static ValueTask<bool> NackAsync<T>(Subscription<T> subscription, in Delivery<T> delivery, Exception error)
    {
        if (subscription is Consumer<T> consumer)
        {
            // The nack counts the failure, and only when it settled the delivery: a handler that acked or rejected
            // it and then threw (or whose clean-up threw) did not fail the message.
            return new ValueTask<bool>(consumer.NackAfterHandlerFailure(delivery, error));
        }

        // Another implementation of the contract: a plain nack on the subscription's schedule.
        return delivery.NackAsync(CancellationToken.None);
    }
}
