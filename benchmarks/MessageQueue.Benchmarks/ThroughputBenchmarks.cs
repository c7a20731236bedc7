using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;

namespace MessageQueue.Benchmarks;

/// <summary>
/// Moves <see cref="MessageCount"/> messages from one producer task to consumer tasks and waits until
/// every consumer has seen (and, for the broker, acked) every message. Times are per published
/// message. The raw bounded channel 1→1 is the baseline: every Ratio in the table is relative to it.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 5, iterationCount: 20)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[HideColumns("Error", "StdDev", "RatioSD", "Gen0", "Gen1", "Gen2")]
[MedianColumn]
public class ThroughputBenchmarks
{
    public const int MessageCount = 100_000;
    private const int Capacity = 1024;
    private const int FanOut = 4;
    private const int Competing = 4;
    private const int Routes = 100;

    // Made once: a publisher reuses its event name strings, as real code does.
    private static readonly string[] EventNames = [.. Enumerable.Range(0, Routes).Select(r => $"region.{r}.created")];

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
        Channel<Payload> channel = CreateChannel();
        Task consumer = Task.Run(() => DrainAsync(channel.Reader));
        for (int i = 0; i < MessageCount; i++)
        {
            await channel.Writer.WriteAsync(Item);
        }

        await consumer;
    }

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "raw Channel<T> fan-out 1→4")]
    public async Task RawFanOut()
    {
        var channels = new Channel<Payload>[FanOut];
        var consumers = new Task[FanOut];
        for (int c = 0; c < FanOut; c++)
        {
            Channel<Payload> channel = channels[c] = CreateChannel();
            consumers[c] = Task.Run(() => DrainAsync(channel.Reader));
        }

        for (int i = 0; i < MessageCount; i++)
        {
            foreach (Channel<Payload> channel in channels)
            {
                await channel.Writer.WriteAsync(Item);
            }
        }

        await Task.WhenAll(consumers);
    }

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "broker 1→1 publish, deliver, ack")]
    public Task BrokerOneToOne() => BrokerAsync(subscriptions: 1);

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "broker 1→1 handler form (acks on return)")]
    public async Task BrokerHandler()
    {
        string queue = "q" + _run++;
        _broker.DeclareQueue<Payload>(queue, new QueueOptions { MaxMessages = Capacity });
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int handled = 0;

        // Default subscription options: the handler form as a user first writes it.
        await using Subscription subscription = await _broker.SubscribeAsync<Payload>(queue, "e", (_, _) =>
        {
            if (++handled == MessageCount)
            {
                done.SetResult();
            }

            return ValueTask.CompletedTask;
        });
        for (int i = 0; i < MessageCount; i++)
        {
            await _broker.PublishAsync(queue, "e", Item);
        }

        await done.Task;
    }

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "broker fan-out 1→4 publish, deliver, ack")]
    public Task BrokerFanOut() => BrokerAsync(subscriptions: FanOut);

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "broker 4 competing consumers, deliver, ack")]
    public async Task BrokerCompeting()
    {
        string queue = "q" + _run++;
        _broker.DeclareQueue<Payload>(queue, new QueueOptions { MaxMessages = Capacity });
        int settled = 0;
        using var done = new CancellationTokenSource();
        var consumers = new Task[Competing];
        var handles = new Subscription<Payload>[Competing];
        for (int c = 0; c < Competing; c++)
        {
            Subscription<Payload> subscription = handles[c] = await _broker.SubscribeAsync<Payload>(queue, "e", new SubscriptionOptions { Name = "workers", MaxInFlight = Capacity / Competing });
            consumers[c] = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        Delivery<Payload> delivery = await subscription.ReadAsync(done.Token);
                        await delivery.AckAsync();
                        if (Interlocked.Increment(ref settled) == MessageCount)
                        {
                            await done.CancelAsync();
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                }
            });
        }

        for (int i = 0; i < MessageCount; i++)
        {
            await _broker.PublishAsync(queue, "e", Item);
        }

        await Task.WhenAll(consumers);
        foreach (Subscription<Payload> subscription in handles)
        {
            await subscription.DisposeAsync();
        }

        await _broker.DeleteSubscriptionAsync(queue, "workers");
    }

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "broker wildcard routing, 100 subscriptions, each message to one")]
    public async Task BrokerWildcard100()
    {
        string queue = "q" + _run++;
        _broker.DeclareQueue<Payload>(queue, new QueueOptions { MaxMessages = Capacity });
        var consumers = new Task[Routes];
        var handles = new Subscription<Payload>[Routes];
        for (int r = 0; r < Routes; r++)
        {
            // "region.7.*" and the like: a wildcard per subscription; event "region.7.created" reaches only it.
            Subscription<Payload> subscription = handles[r] = await _broker.SubscribeAsync<Payload>(queue, $"region.{r}.*", new SubscriptionOptions { MaxInFlight = Capacity });
            consumers[r] = Task.Run(async () =>
            {
                for (int seen = 0; seen < MessageCount / Routes; seen++)
                {
                    Delivery<Payload> delivery = await subscription.ReadAsync();
                    await delivery.AckAsync();
                }
            });
        }

        for (int i = 0; i < MessageCount; i++)
        {
            await _broker.PublishAsync(queue, EventNames[i % Routes], Item);
        }

        await Task.WhenAll(consumers);
        foreach (Subscription<Payload> subscription in handles)
        {
            await subscription.DisposeAsync();
        }
    }

    private async Task BrokerAsync(int subscriptions)
    {
        string queue = "q" + _run++;
        _broker.DeclareQueue<Payload>(queue, new QueueOptions { MaxMessages = Capacity });
        var consumers = new Task[subscriptions];
        var handles = new Subscription<Payload>[subscriptions];
        for (int s = 0; s < subscriptions; s++)
        {
            Subscription<Payload> subscription = handles[s] = await _broker.SubscribeAsync<Payload>(queue, "e", new SubscriptionOptions { MaxInFlight = Capacity });
            consumers[s] = Task.Run(() => ReadAndAckAsync(subscription));
        }

        for (int i = 0; i < MessageCount; i++)
        {
            await _broker.PublishAsync(queue, "e", Item);
        }

        await Task.WhenAll(consumers);
        foreach (Subscription<Payload> subscription in handles)
        {
            await subscription.DisposeAsync();
        }
    }

    private static Channel<Payload> CreateChannel() =>
        Channel.CreateBounded<Payload>(new BoundedChannelOptions(Capacity) { SingleReader = true, SingleWriter = true });

    private static async Task DrainAsync(ChannelReader<Payload> reader)
    {
        for (int seen = 0; seen < MessageCount; seen++)
        {
            await reader.ReadAsync();
        }
    }

    private static async Task ReadAndAckAsync(Subscription<Payload> subscription)
    {
        for (int seen = 0; seen < MessageCount; seen++)
        {
            Delivery<Payload> delivery = await subscription.ReadAsync();
            await delivery.AckAsync();
        }
    }
}
