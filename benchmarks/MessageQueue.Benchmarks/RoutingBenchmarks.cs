using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;

namespace MessageQueue.Benchmarks;

/// <summary>
/// Routing at scale, on one thread: publish a batch with names cycling through <see cref="Names"/> distinct event names
/// (<c>ep0.results</c>, <c>ep1.results</c>…, an id in each, as pub/sub names often have), into a queue with
/// <see cref="NonMatching"/> wildcard subscriptions that match none of them (<c>other.N.*</c>) and one that matches
/// all (<c>*.results</c>); then read and ack the batch. With 1 name every publish finds its route in the cache; with
/// 100 000, nearly every publish misses it and walks the subscription trie. The raw bounded channel moving the same
/// batch on one thread is the baseline of each combination.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 3, iterationCount: 10)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByParams)]
[HideColumns("Error", "StdDev", "RatioSD", "Gen0", "Gen1", "Gen2")]
[MedianColumn]
public class RoutingBenchmarks
{
    private const int Batch = 1000;
    private static readonly Payload Item = new(42);
    private Broker _broker = null!;
    private Subscription<Payload> _subscription = null!;
    private Channel<Payload> _channel = null!;
    private string[] _names = [];
    private int _next;

    /// <summary>Distinct event names, cycling.</summary>
    [Params(1, 1_024, 100_000)]
    public int Names { get; set; }

    /// <summary>Wildcard subscriptions on the queue that match none of the names.</summary>
    [Params(0, 1_000, 10_000)]
    public int NonMatching { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        _broker = new Broker();
        _broker.DeclareQueue<Payload>("q", new QueueOptions { MaxMessages = Batch * 2 });
        for (int i = 0; i < NonMatching; i++)
        {
            await _broker.SubscribeAsync<Payload>("q", $"other.{i}.*");
        }

        _subscription = await _broker.SubscribeAsync<Payload>("q", "*.results", new SubscriptionOptions { MaxInFlight = Batch * 2 });
        _names = [.. Enumerable.Range(0, Names).Select(i => $"ep{i}.results")];
        _channel = Channel.CreateBounded<Payload>(new BoundedChannelOptions(Batch * 2) { SingleReader = true, SingleWriter = true });
    }

    [GlobalCleanup]
    public async Task Cleanup() => await _broker.DisposeAsync();

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch, Description = "raw Channel<T>, one thread")]
    public void RawChannel()
    {
        for (int i = 0; i < Batch; i++)
        {
            _channel.Writer.TryWrite(Item);
        }

        for (int i = 0; i < Batch; i++)
        {
            _channel.Reader.TryRead(out _);
        }
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "broker publish, read, ack")]
    public async Task Broker()
    {
        string[] names = _names;
        int next = _next;
        for (int i = 0; i < Batch; i++)
        {
            _broker.TryPublish("q", names[next], Item, out _);
            next = next + 1 == names.Length ? 0 : next + 1;
        }

        _next = next;
        for (int i = 0; i < Batch; i++)
        {
            _subscription.TryRead(out Delivery<Payload> delivery);
            await delivery.AckAsync();
        }
    }
}
