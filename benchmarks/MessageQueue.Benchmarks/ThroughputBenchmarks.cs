using System.Threading.Channels;
using BenchmarkDotNet.Attributes;

namespace MessageQueue.Benchmarks;

/// <summary>
/// Moves <see cref="MessageCount"/> messages from one producer task to consumer tasks and waits for all
/// of them. The raw bounded channel is the baseline: every ratio in the table is relative to it.
/// </summary>
[MemoryDiagnoser]
public class ThroughputBenchmarks
{
    public const int MessageCount = 100_000;
    private const int Capacity = 1024;

    private static readonly Payload Item = new(42);
    private Broker _broker = null!;
    private int _run;

    [GlobalSetup]
    public void Setup() => _broker = new Broker();

    [GlobalCleanup]
    public async Task Cleanup() => await _broker.DisposeAsync();

    [Benchmark(Baseline = true, OperationsPerInvoke = MessageCount, Description = "raw Channel<T> 1→1")]
    public async Task RawChannel()
    {
        var channel = Channel.CreateBounded<Payload>(new BoundedChannelOptions(Capacity) { SingleReader = true, SingleWriter = true });
        Task consumer = Task.Run(async () =>
        {
            int seen = 0;
            while (seen < MessageCount)
            {
                await channel.Reader.ReadAsync();
                seen++;
            }
        });
        for (int i = 0; i < MessageCount; i++)
        {
            await channel.Writer.WriteAsync(Item);
        }

        await consumer;
    }

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "broker 1→1 ack")]
    public async Task BrokerOneToOne()
    {
        string queue = "q" + _run++;
        _broker.DeclareQueue<Payload>(queue, new QueueOptions { MaxMessages = Capacity });
        Subscription<Payload> subscription = await _broker.SubscribeAsync<Payload>(queue, "e", new SubscriptionOptions { MaxInFlight = Capacity });
        Task consumer = Task.Run(async () =>
        {
            int seen = 0;
            while (seen < MessageCount)
            {
                Delivery<Payload> delivery = await subscription.ReadAsync();
                await delivery.AckAsync();
                seen++;
            }
        });
        for (int i = 0; i < MessageCount; i++)
        {
            await _broker.PublishAsync(queue, "e", Item);
        }

        await consumer;
        await subscription.DisposeAsync();
    }
}
