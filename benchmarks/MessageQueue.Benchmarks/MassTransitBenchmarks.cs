using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace MessageQueue.Benchmarks;

/// <summary>
/// The same work through MassTransit 8.4.0's in-memory bus and through the broker: publish
/// <see cref="MessageCount"/> messages one after another (awaiting each publish), one consumer, wait until it
/// has handled all of them. The raw bounded channel moving the same messages is the baseline.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 10)]
[HideColumns("Error", "StdDev", "RatioSD", "Gen0", "Gen1", "Gen2")]
[MedianColumn]
public class MassTransitBenchmarks
{
    public const int MessageCount = 5_000;

    private static readonly Payload Item = new(42);
    private ServiceProvider _services = null!;
    private IBusControl _bus = null!;
    private Handled _handled = null!;
    private Broker _broker = null!;
    private Subscription _subscription = null!;
    private Handled _brokerHandled = null!;

    /// <summary>Counts handled messages and completes when a run's count is reached.</summary>
    public sealed class Handled
    {
        private int _count;
        private int _target;
        private TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Expect(int target)
        {
            _count = 0;
            _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _target, target);
            return _done.Task;
        }

        public void One()
        {
            if (Interlocked.Increment(ref _count) == Volatile.Read(ref _target))
            {
                _done.TrySetResult();
            }
        }
    }

    /// <summary>The MassTransit consumer: counts and returns.</summary>
    public sealed class PayloadConsumer(Handled handled) : IConsumer<Payload>
    {
        public Task Consume(ConsumeContext<Payload> context)
        {
            handled.One();
            return Task.CompletedTask;
        }
    }

    [GlobalSetup]
    public async Task Setup()
    {
        _handled = new Handled();
        var services = new ServiceCollection();
        services.AddSingleton(_handled);
        services.AddMassTransit(bus =>
        {
            bus.AddConsumer<PayloadConsumer>();
            bus.UsingInMemory((context, cfg) => cfg.ConfigureEndpoints(context));
        });
        _services = services.BuildServiceProvider();
        _bus = _services.GetRequiredService<IBusControl>();
        await _bus.StartAsync();

        _broker = new Broker();
        _brokerHandled = new Handled();
        _subscription = await _broker.SubscribeAsync<Payload>("q", "#", (_, _) =>
        {
            _brokerHandled.One();
            return ValueTask.CompletedTask;
        });
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _bus.StopAsync();
        await _services.DisposeAsync();
        await _subscription.DisposeAsync();
        await _broker.DisposeAsync();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = MessageCount, Description = "raw Channel<T> 1→1")]
    public Task RawChannel() => MessageQueue.Benchmarks.RawChannel.MoveAsync(Item, MessageCount);

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "MassTransit 8.4.0 in-memory publish → consume")]
    public async Task MassTransit()
    {
        Task done = _handled.Expect(MessageCount);
        for (int i = 0; i < MessageCount; i++)
        {
            await _bus.Publish(Item);
        }

        await done;
    }

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "broker publish → handler (acks on return)")]
    public async Task Broker()
    {
        Task done = _brokerHandled.Expect(MessageCount);
        for (int i = 0; i < MessageCount; i++)
        {
            await _broker.PublishAsync("q", "e", Item);
        }

        await done;
    }
}
