using System.Threading.Channels;
using BenchmarkDotNet.Attributes;

namespace MessageQueue.Benchmarks;

/// <summary>
/// The cost of the path itself, with no second thread: publish, read and ack on one thread. Shows
/// instruction cost without cross-core traffic.
/// </summary>
[MemoryDiagnoser]
public class SingleThreadBenchmarks
{
    private const int Batch = 1000;
    private static readonly Payload Item = new(42);
    private Broker _broker = null!;
    private Subscription<Payload> _subscription = null!;
    private Channel<Payload> _channel = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _broker = new Broker();
        _broker.DeclareQueue<Payload>("q", new QueueOptions { MaxMessages = Batch * 2 });
        _subscription = await _broker.SubscribeAsync<Payload>("q", "e", new SubscriptionOptions { MaxInFlight = Batch * 2 });
        _channel = Channel.CreateBounded<Payload>(new BoundedChannelOptions(Batch * 2) { SingleReader = true, SingleWriter = true });
    }

    [GlobalCleanup]
    public async Task Cleanup() => await _broker.DisposeAsync();

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
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

    [Benchmark(OperationsPerInvoke = Batch)]
    public async Task BrokerPublishReadAck()
    {
        for (int i = 0; i < Batch; i++)
        {
            _broker.TryPublish("q", "e", Item, out _);
        }

        for (int i = 0; i < Batch; i++)
        {
            _subscription.TryRead(out Delivery<Payload> delivery);
            await delivery.AckAsync();
        }
    }
}
