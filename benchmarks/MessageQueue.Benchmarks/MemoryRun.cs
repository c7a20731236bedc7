using System.Globalization;

namespace MessageQueue.Benchmarks;

/// <summary>
/// Broker memory per retained message, beyond the payload: a queue holds <see cref="Count"/> messages that share one
/// payload instance (so the payload costs nothing), and the managed heap is measured after a full collection before
/// and after. Run with <c>dotnet run -c Release -- memory</c>. Heap sizes after a full collection repeat to the byte,
/// so this is a measurement, not a sample.
/// </summary>
internal static class MemoryRun
{
    private const int Count = 100_000;

    private static readonly Payload Shared = new(42);

    public static async Task<int> RunAsync()
    {
        Console.WriteLine($"Broker memory per retained message, beyond the payload; {Count:N0} messages, .NET {Environment.Version}");
        Console.WriteLine("| where the messages wait | bytes per message |");
        Console.WriteLine("|---|---:|");
        Print("a durable subscription's backlog (no consumer attached)", await MeasureAsync(BacklogAsync));
        Print("a consumer's ring, not yet read (MaxInFlight = the count)", await MeasureAsync(RingAsync));
        Print("a Limits-retention queue, no subscription", await MeasureAsync(LogAsync));
        return 0;
    }

    private static void Print(string where, double bytes) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {where} | {bytes:0.0} |"));

    // The setup runs first with nothing published, so the queue, the subscription and their tables exist before the
    // first measurement; then the heap is measured around the publishes alone.
    private static async Task<double> MeasureAsync(Func<Broker, Func<Task>, Task> scenario)
    {
        await using var broker = new Broker();
        double perMessage = 0;
        await scenario(broker, async () =>
        {
            long before = GC.GetTotalMemory(forceFullCollection: true);
            for (int i = 0; i < Count; i++)
            {
                await broker.PublishAsync("q", "e", Shared);
            }

            long after = GC.GetTotalMemory(forceFullCollection: true);
            perMessage = (double)(after - before) / Count;
        });
        return perMessage;
    }

    private static async Task BacklogAsync(Broker broker, Func<Task> publish)
    {
        broker.DeclareQueue<Payload>("q", new QueueOptions { MaxMessages = Count });
        Subscription<Payload> consumer = await broker.SubscribeAsync<Payload>("q", "#", new SubscriptionOptions { Name = "later" });
        await consumer.DisposeAsync();
        await publish();
    }

    private static async Task RingAsync(Broker broker, Func<Task> publish)
    {
        broker.DeclareQueue<Payload>("q", new QueueOptions { MaxMessages = Count });
        await using Subscription<Payload> consumer = await broker.SubscribeAsync<Payload>("q", "#", new SubscriptionOptions { MaxInFlight = Count });
        await publish();
    }

    private static async Task LogAsync(Broker broker, Func<Task> publish)
    {
        broker.DeclareQueue<Payload>("q", new QueueOptions { MaxMessages = Count, Retention = RetentionPolicy.Limits, Overflow = OverflowPolicy.DropOldest });
        await publish();
    }
}
