using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using MessageQueue.RabbitMQ;
using MessageQueue.Sqlite;

namespace MessageQueue.Benchmarks;

/// <summary>
/// The same publish → deliver → ack, through <see cref="IPublisher"/> and <see cref="ISubscriber"/>, on each place a
/// message can live: the in-memory broker, the broker on a SQLite store (Fsync, group commit) and RabbitMQ (a quorum
/// queue for a durable subscription, publisher confirms). The publisher keeps <see cref="Window"/> publishes in
/// flight; one consumer reads and acks each message. A raw bounded channel moving the same messages is the baseline.
/// RabbitMQ must be running: eng/rabbitmq.sh start (or MQ_RABBITMQ_URL).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 10)]
[HideColumns("Error", "StdDev", "RatioSD", "Gen0", "Gen1", "Gen2")]
[MedianColumn]
public class TransportBenchmarks
{
    public const int MessageCount = 10_000;
    public const int Window = 512;

    private static readonly Payload Item = new(42);
    private string? _directory;
    private IAsyncDisposable _owner = null!;
    private IPublisher _publisher = null!;
    private Subscription<Payload> _worker = null!;
    private string _queue = null!;

    public enum Place
    {
        InMemory,
        SqliteFsync,
        RabbitMq,
    }

    [Params(Place.InMemory, Place.SqliteFsync, Place.RabbitMq)]
    public Place Transport { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _queue = "bench-" + Guid.NewGuid().ToString("N");
        ISubscriber subscriber;
        switch (Transport)
        {
            case Place.RabbitMq:
                string url = Environment.GetEnvironmentVariable("MQ_RABBITMQ_URL") is { Length: > 0 } u ? u : "amqp://guest:guest@127.0.0.1:5672/";
                RabbitMqTransport transport = await RabbitMqTransport.ConnectAsync(new RabbitMqOptions { ConnectionString = url, ClientName = "benchmarks" });
                await transport.DeclareQueueAsync(_queue);
                (_owner, _publisher, subscriber) = (transport, transport, transport);
                break;
            default:
                var options = new BrokerOptions();
                if (Transport == Place.SqliteFsync)
                {
                    _directory = Directory.CreateTempSubdirectory("mq-bench-").FullName;
                    options.Store = new SqliteMessageStore(Path.Combine(_directory, "bench.db"));
                    options.Durability = Durability.Fsync;
                }

                var broker = new Broker(options);
                broker.DeclareQueue<Payload>(_queue, new QueueOptions { MaxMessages = 4 * Window });
                (_owner, _publisher, subscriber) = (broker, broker, broker);
                break;
        }

        _worker = await subscriber.SubscribeAsync<Payload>(_queue, "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 2 * Window });
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _worker.DisposeAsync();
        await _owner.DisposeAsync();
        if (_directory is not null)
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = MessageCount, Description = "raw Channel<T> 1→1")]
    public Task RawChannel() => MessageQueue.Benchmarks.RawChannel.MoveAsync(Item, MessageCount);

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "publish, deliver, ack")]
    public Task PublishDeliverAck() => WindowedPublish.MoveAsync(_publisher, _worker, _queue, Item, MessageCount, Window);
}
