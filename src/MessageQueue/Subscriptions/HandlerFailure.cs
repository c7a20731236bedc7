namespace MessageQueue;

/// <summary>
/// What every handler host (the handler form of SubscribeAsync, and the hosted handlers of
/// MessageQueue.DependencyInjection) does when a handler throws.
/// </summary>
internal static class HandlerFailure
{
    /// <summary>
    /// Counts the failure in the subscription's snapshot, keeps the error in the message's history (so a dead
    /// letter says why), and nacks: redelivered after the backoff delay, or dead-lettered on the last attempt.
    /// </summary>
    public static ValueTask<bool> NackAsync<T>(Subscription<T> subscription, in Delivery<T> delivery, Exception error)
    {
        if (subscription is Consumer<T> consumer)
        {
            consumer.State.RecordHandlerFailure();
            return new ValueTask<bool>(consumer.NackAfterHandlerFailure(delivery, error));
        }

        // Another implementation of the contract: a plain nack on the subscription's schedule.
        return delivery.NackAsync(CancellationToken.None);
    }
}
