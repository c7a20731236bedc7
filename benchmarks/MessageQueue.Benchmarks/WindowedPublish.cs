namespace MessageQueue.Benchmarks;

/// <summary>
/// Publish → deliver → ack of <c>count</c> messages: one task publishes keeping <c>window</c> publishes in flight (as
/// many concurrent publishers would), one consumer reads and acks each.
/// </summary>
internal static class WindowedPublish
{
    public static async Task MoveAsync(IPublisher publisher, Subscription<Payload> worker, string queue, Payload item, int count, int window)
    {
        Task consumer = Task.Run(async () =>
        {
            for (int i = 0; i < count; i++)
            {
                Delivery<Payload> delivery = await worker.ReadAsync();
                await delivery.AckAsync();
            }
        });

        var inFlight = new Queue<Task<PublishReceipt>>(window);
        for (int i = 0; i < count; i++)
        {
            if (inFlight.Count == window)
            {
                await inFlight.Dequeue();
            }

            inFlight.Enqueue(publisher.PublishAsync(queue, "e", item).AsTask());
        }

        while (inFlight.Count > 0)
        {
            await inFlight.Dequeue();
        }

        await consumer;
    }
}
