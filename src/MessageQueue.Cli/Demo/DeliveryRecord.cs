namespace MessageQueue.Cli.Demo;

/// <summary>One delivery a subscriber read, as the scenario observed it.</summary>
/// <param name="MessageId">The message id.</param>
/// <param name="Sequence">The message's sequence in the queue.</param>
/// <param name="Event">The event name.</param>
/// <param name="Attempt">The delivery's attempt number: 1 first, 2 or more when delivered again.</param>
internal sealed record DeliveryRecord(Guid MessageId, long Sequence, string Event, int Attempt)
{
    public static DeliveryRecord From<T>(Delivery<T> delivery) =>
        new(delivery.Message.Id, delivery.Message.Sequence, delivery.Event, delivery.Attempt);
}
