using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MessageQueue.Sqlite;

namespace MessageQueue.Benchmarks;

/// <summary>
/// The SQLite store at scale: file bytes per retained message against its serialized payload, and a restart with a
/// retained backlog (time to the first delivery, messages and managed memory the recovered queue keeps, and how fast the
/// whole backlog is then read back and acked through the memory window).
/// </summary>
internal static class StorageRun
{
    private const int Window = 512;

    /// <summary>A payload whose JSON is about <paramref name="size"/> bytes.</summary>
    public sealed record Document(string Body);

    public static async Task<int> RunAsync(string[] args)
    {
        int[] backlogs = args.Length > 1 ? [.. args.Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture))] : [10_000, 100_000];
        string directory = Path.Combine(Path.GetTempPath(), "mq-storage-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            Console.WriteLine($"SQLite store, .NET {Environment.Version}, Durability.Fsync, {Window} publishes in flight");
            Console.WriteLine();
            Console.WriteLine("| retained messages | payload (JSON) | file bytes per message | ratio to the payload |");
            Console.WriteLine("|---:|---:|---:|---:|");
            await FileSizeAsync(Path.Combine(directory, "size.db"), 10_000, 1_400);
            Console.WriteLine();
            Console.WriteLine("| retained messages | payload (JSON) | restart to first delivery | messages in memory | managed memory kept after the restart | then reading and acking the backlog |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
            foreach (int count in backlogs)
            {
                await RecoveryAsync(Path.Combine(directory, $"recovery-{count}.db"), count, 100);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        return 0;
    }

    private static Broker Open(string path) => new(new BrokerOptions
    {
        Store = new SqliteMessageStore(path),
        Durability = Durability.Fsync,
        ShutdownTimeout = TimeSpan.Zero,
    });

    private static Document Payload(int size) => new(new string('x', size - 11)); // {"Body":"…"} is 11 bytes of JSON around the text

    /// <summary>Publishes <paramref name="count"/> messages into a durable subscription nobody reads, then closes the broker.</summary>
    private static async Task FillAsync(string path, int count, Document payload)
    {
        await using Broker broker = Open(path);
        broker.DeclareQueue<Document>("q", new QueueOptions { MaxMessages = count });
        await (await broker.SubscribeAsync<Document>("q", "#", new SubscriptionOptions { Name = "later" })).DisposeAsync();
        var inFlight = new Queue<Task<PublishReceipt>>(Window);
        for (int i = 0; i < count; i++)
        {
            if (inFlight.Count == Window)
            {
                await inFlight.Dequeue();
            }

            inFlight.Enqueue(broker.PublishAsync("q", "e", payload).AsTask());
        }

        while (inFlight.Count > 0)
        {
            await inFlight.Dequeue();
        }
    }

    private static long FileBytes(string path) =>
        new[] { path, path + "-wal", path + "-shm" }.Where(File.Exists).Sum(file => new FileInfo(file).Length);

    private static async Task FileSizeAsync(string path, int count, int payloadSize)
    {
        Document payload = Payload(payloadSize);
        int json = JsonSerializer.SerializeToUtf8Bytes(payload).Length;
        await FillAsync(path, count, payload);
        double perMessage = (double)FileBytes(path) / count;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {count:N0} | {json:N0} B | {perMessage:N0} B | {perMessage / json:0.00}× |"));
    }

    private static async Task RecoveryAsync(string path, int count, int payloadSize)
    {
        Document payload = Payload(payloadSize);
        int json = JsonSerializer.SerializeToUtf8Bytes(payload).Length;
        await FillAsync(path, count, payload);

        long before = GC.GetTotalMemory(forceFullCollection: true);
        var watch = Stopwatch.StartNew();
        await using Broker broker = Open(path);
        broker.DeclareQueue<Document>("q", new QueueOptions { MaxMessages = count });
        await using Subscription<Document> later = await broker.SubscribeAsync<Document>("q", "#", new SubscriptionOptions { Name = "later" });
        Delivery<Document> first = await later.ReadAsync();
        watch.Stop();
        QueueSnapshot recovered = broker.GetSnapshot().Queues.Single(q => q.Name == "q");
        long after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(first);

        // The whole backlog, read back through the window as the acks release what is in memory.
        var drain = Stopwatch.StartNew();
        await first.AckAsync();
        for (int i = 1; i < count; i++)
        {
            await (await later.ReadAsync()).AckAsync();
        }

        await broker.FlushAsync();
        drain.Stop();
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"| {count:N0} | {json:N0} B | {watch.Elapsed.TotalMilliseconds:N0} ms | {recovered.Depth - recovered.PagedOut:N0} | {(after - before) / 1048576.0:N1} MB | {count / drain.Elapsed.TotalSeconds / 1000:N0} k msg/s |"));
    }
}
