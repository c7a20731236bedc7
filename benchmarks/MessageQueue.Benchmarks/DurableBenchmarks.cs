using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using MessageQueue.Sqlite;

namespace MessageQueue.Benchmarks;

/// <summary>
/// Durable publish → deliver → ack on a SQLite store, at each durability level, with group commit and
/// with one commit per store operation. Publishers keep <see cref="Window"/> publishes in flight (many
/// callers, or one caller that does not await each publish), which is what lets commits carry many
/// messages. The raw bounded channel moving the same messages is the baseline.
/// </summary>
[MemoryDiagnoser]
// Twenty warm-up iterations (about two seconds at Fsync): the measured ones are the steady state. With two, they mixed
// two speeds: code the JIT had not yet optimized (tiered compilation promotes a method after it is called often and a
// short delay), and a write-ahead log still growing, where every commit extends the file (a metadata update in the
// flush) instead of overwriting blocks it already has.
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 20, iterationCount: 15)]
[HideColumns("Error", "StdDev", "RatioSD", "Gen0", "Gen1", "Gen2")]
[MedianColumn]
public class DurableBenchmarks
{
    public const int MessageCount = 20_000;
    public const int OneByOneCount = 500;
    public const int Window = 512;

    private static readonly Payload Item = new(42);
    private string _directory = null!;
    private Broker _broker = null!;
    private Subscription<Payload> _worker = null!;

    [Params(Durability.InMemory, Durability.Committed, Durability.Fsync)]
    public Durability Level { get; set; }

    private async Task StartAsync(int maxStoreBatch)
    {
        _directory = Directory.CreateTempSubdirectory("mq-bench-").FullName;
        _broker = new Broker(new BrokerOptions
        {
            Store = new SqliteMessageStore(Path.Combine(_directory, "bench.db")),
            MaxStoreBatch = maxStoreBatch,
        });
        _broker.DeclareQueue<Payload>("q", new QueueOptions { MaxMessages = 4 * Window, Durability = Level });
        _worker = await _broker.SubscribeAsync<Payload>("q", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 2 * Window });
    }

    [GlobalSetup(Targets = [nameof(RawChannel), nameof(GroupCommit)])]
    public Task SetupGroupCommit() => StartAsync(maxStoreBatch: 4096);

    [GlobalSetup(Target = nameof(OneCommitPerOperation))]
    public Task SetupOneByOne() => StartAsync(maxStoreBatch: 1);

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _broker.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = MessageCount, Description = "raw Channel<T> 1→1")]
    public Task RawChannel() => MessageQueue.Benchmarks.RawChannel.MoveAsync(Item, MessageCount);

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "durable publish, deliver, ack: group commit")]
    public Task GroupCommit() => MoveAsync(MessageCount);

    [Benchmark(OperationsPerInvoke = OneByOneCount, Description = "durable publish, deliver, ack: one commit per operation")]
    public Task OneCommitPerOperation() => MoveAsync(OneByOneCount);

    private Task MoveAsync(int count) => WindowedPublish.MoveAsync(_broker, _worker, "q", Item, count, Window);
}
