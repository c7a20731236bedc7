namespace MessageQueue.Persistence;

/// <summary>One change to a store. Which members are set depends on <see cref="Kind"/>; create one with the static methods.</summary>
public readonly record struct StoreOperation
{
    private StoreOperation(StoreOperationKind kind, string queue)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        Kind = kind;
        Queue = queue;
    }

    /// <summary>Gets what the operation does.</summary>
    public StoreOperationKind Kind { get; }

    /// <summary>Gets the queue it applies to; null only for <see langword="default"/>, which is not an operation.</summary>
    public string Queue { get; }

    /// <summary>Gets the message sequence (<see cref="StoreOperationKind.Ack"/>, <see cref="StoreOperationKind.Remove"/>, <see cref="StoreOperationKind.SetDeliveries"/>, <see cref="StoreOperationKind.SetCursor"/>).</summary>
    public long Sequence { get; private init; }

    /// <summary>Gets the durable subscription's name (<see cref="StoreOperationKind.Ack"/>, <see cref="StoreOperationKind.SetDeliveries"/>, <see cref="StoreOperationKind.SetCursor"/>, <see cref="StoreOperationKind.DeleteSubscription"/>).</summary>
    public string? Subscription { get; private init; }

    /// <summary>Gets how many times the message was delivered (<see cref="StoreOperationKind.SetDeliveries"/>).</summary>
    public int Deliveries { get; private init; }

    /// <summary>Gets the message (<see cref="StoreOperationKind.Append"/>, <see cref="StoreOperationKind.Schedule"/>).</summary>
    public StoredMessage? Message { get; private init; }

    /// <summary>Gets the held message's id (<see cref="StoreOperationKind.Unschedule"/>).</summary>
    public Guid MessageId { get; private init; }

    /// <summary>Gets the subscription to keep (<see cref="StoreOperationKind.SaveSubscription"/>).</summary>
    public StoredSubscription? DurableSubscription { get; private init; }

    /// <summary>Gets the time (<see cref="StoreOperationKind.ForgetIds"/>).</summary>
    public DateTimeOffset Time { get; private init; }

    /// <summary>Keeps a published message.</summary>
    /// <param name="message">The message, with its sequence.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation Append(StoredMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new(StoreOperationKind.Append, message.Queue) { Message = message, Sequence = message.Sequence };
    }

    /// <summary>Records that a durable subscription settled a message that others may still hold.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="subscription">The durable subscription.</param>
    /// <param name="sequence">The message's sequence.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation Ack(string queue, string subscription, long sequence) =>
        new(StoreOperationKind.Ack, queue) { Subscription = Named(subscription), Sequence = sequence };

    /// <summary>Forgets a message and everything about it.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="sequence">The message's sequence.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation Remove(string queue, long sequence) =>
        new(StoreOperationKind.Remove, queue) { Sequence = sequence };

    /// <summary>Records how many times a message was delivered to a subscription before it came back.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="subscription">The durable subscription.</param>
    /// <param name="sequence">The message's sequence.</param>
    /// <param name="deliveries">The deliveries so far.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation SetDeliveries(string queue, string subscription, long sequence, int deliveries) =>
        new(StoreOperationKind.SetDeliveries, queue) { Subscription = Named(subscription), Sequence = sequence, Deliveries = deliveries };

    /// <summary>Records that a subscription has been delivered everything up to a sequence at least once.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="subscription">The durable subscription.</param>
    /// <param name="sequence">The highest sequence delivered.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation SetCursor(string queue, string subscription, long sequence) =>
        new(StoreOperationKind.SetCursor, queue) { Subscription = Named(subscription), Sequence = sequence };

    /// <summary>Keeps a durable subscription.</summary>
    /// <param name="subscription">The subscription.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation SaveSubscription(StoredSubscription subscription)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        return new(StoreOperationKind.SaveSubscription, subscription.Queue) { DurableSubscription = subscription, Subscription = subscription.Name };
    }

    /// <summary>Forgets a durable subscription and what it acked.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="subscription">The durable subscription.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation DeleteSubscription(string queue, string subscription) =>
        new(StoreOperationKind.DeleteSubscription, queue) { Subscription = Named(subscription) };

    /// <summary>Keeps a message held for delayed delivery.</summary>
    /// <param name="message">The message; its sequence is 0 and its <see cref="StoredMessage.DueAt"/> is set.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation Schedule(StoredMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new(StoreOperationKind.Schedule, message.Queue) { Message = message, MessageId = message.Id };
    }

    /// <summary>Forgets a held message.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="messageId">The held message's id.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation Unschedule(string queue, Guid messageId) =>
        new(StoreOperationKind.Unschedule, queue) { MessageId = messageId };

    /// <summary>Forgets deduplication ids remembered until a time or earlier.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="until">The time.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation ForgetIds(string queue, DateTimeOffset until) =>
        new(StoreOperationKind.ForgetIds, queue) { Time = until };

    /// <summary>Records that a publish took a sequence without storing a message, so the sequence is never handed out again.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="sequence">The sequence taken.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation SequenceTaken(string queue, long sequence) =>
        new(StoreOperationKind.SequenceTaken, queue) { Sequence = sequence };

    private static string Named(string subscription, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(subscription))] string? paramName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(subscription, paramName);
        return subscription;
    }
}
