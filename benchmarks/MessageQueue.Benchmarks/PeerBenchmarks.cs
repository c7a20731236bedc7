using BenchmarkDotNet.Attributes;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wolverine;
using RunStrategy = BenchmarkDotNet.Engines.RunStrategy;

namespace MessageQueue.Benchmarks;

/// <summary>
/// The same work through the broker's handler form and through its peers, in one run so the ratios compare:
/// publish <see cref="MessageCount"/> messages one after another (awaiting each publish), one consumer or
/// handler that counts, wait until it has handled all of them. The raw bounded channel moving the same
/// messages is the baseline.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Broker: the handler form, <c>SubscribeAsync&lt;Payload&gt;(queue, filter, handler)</c> with default
/// subscription options (one handler call at a time, acked when it returns).</item>
/// <item>MassTransit 8.5.12 (the last Apache-2.0 line; 9 is commercial): <c>UsingInMemory</c>, one consumer,
/// endpoint defaults.</item>
/// <item>Wolverine 6.64.2: a Generic Host, the handler's adapter generated at run time
/// (<c>UseRuntimeCompilation</c>), <see cref="Payload"/> routed to one in-memory local queue
/// (<c>BufferedInMemory</c>, no message store, <see cref="DurabilityMode.Solo"/> with the durability agent
/// off), no logging providers. A local queue runs up to max(processor count, 5) handlers in parallel by
/// default; this suite makes it <c>Sequential()</c> (one at a time) to match the broker's handler. Runtime
/// compilation needs dynamic code: under <c>PublishAot=true</c> (the default of a file-based app) every message
/// fails with PlatformNotSupportedException and goes to the error queue, so a wait for them never ends.</item>
/// </list>
/// <see cref="MessageCount"/> is 5 000 so that one invocation of the slowest peer (MassTransit, tens of µs a
/// message) takes well over 50 ms. Setup sends one message through each peer before measuring, so first-use
/// work (Wolverine compiles its handler adapter with Roslyn on the first message, about 1.5 s) stays out of
/// the pilot stage.
/// </remarks>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 8, iterationCount: 15)]
[HideColumns("Error", "StdDev", "RatioSD", "Gen0", "Gen1", "Gen2")]
[MedianColumn]
public class PeerBenchmarks
{
    public const int MessageCount = 5_000;

    private static readonly Payload Item = new(42);

    private Broker _broker = null!;
    private Subscription _subscription = null!;
    private Handled _brokerHandled = null!;

    private ServiceProvider _massTransitServices = null!;
    private IBusControl _massTransitBus = null!;
    private Handled _massTransitHandled = null!;

    private IHost _wolverineHost = null!;
    private IMessageBus _wolverineBus = null!;
    private Handled _wolverineHandled = null!;

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

    /// <summary>
    /// The Wolverine handler: counts. Not static (Wolverine takes it as a type argument) and not sealed, as
    /// Wolverine's own samples write them.
    /// </summary>
    public class PayloadHandler
    {
        public void Handle(Payload payload, Handled handled) => handled.One();
    }

    // Each benchmark runs in a process of its own (BenchmarkDotNet's default), and each starts only what it measures: a
    // bus or host left running beside another benchmark would share the machine's two cores with it.

    [GlobalSetup(Target = nameof(Broker))]
    public async Task SetupBroker()
    {
        _broker = new Broker();
        _brokerHandled = new Handled();
        _subscription = await _broker.SubscribeAsync<Payload>("q", "#", (_, _) =>
        {
            _brokerHandled.One();
            return ValueTask.CompletedTask;
        });
        await Broker();
    }

    [GlobalCleanup(Target = nameof(Broker))]
    public async Task CleanupBroker()
    {
        await _subscription.DisposeAsync();
        await _broker.DisposeAsync();
    }

    [GlobalSetup(Target = nameof(MassTransit))]
    public async Task SetupMassTransit()
    {
        _massTransitHandled = new Handled();
        var services = new ServiceCollection();
        services.AddSingleton(_massTransitHandled);
        services.AddMassTransit(bus =>
        {
            bus.AddConsumer<PayloadConsumer>();
            bus.UsingInMemory((context, cfg) => cfg.ConfigureEndpoints(context));
        });
        _massTransitServices = services.BuildServiceProvider();
        _massTransitBus = _massTransitServices.GetRequiredService<IBusControl>();
        await _massTransitBus.StartAsync();
        await MassTransit();
    }

    [GlobalCleanup(Target = nameof(MassTransit))]
    public async Task CleanupMassTransit()
    {
        await _massTransitBus.StopAsync();
        await _massTransitServices.DisposeAsync();
    }

    [GlobalSetup(Target = nameof(Wolverine))]
    public async Task SetupWolverine()
    {
        _wolverineHandled = new Handled();
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_wolverineHandled);
        builder.UseWolverine(opts =>
        {
            opts.UseRuntimeCompilation();
            opts.Durability.Mode = DurabilityMode.Solo;
            opts.Durability.DurabilityAgentEnabled = false;
            opts.Discovery.DisableConventionalDiscovery().IncludeType<PayloadHandler>();
            opts.PublishMessage<Payload>().ToLocalQueue("payloads").BufferedInMemory().Sequential();
        });
        _wolverineHost = builder.Build();
        await _wolverineHost.StartAsync();
        _wolverineBus = _wolverineHost.Services.GetRequiredService<IMessageBus>();
        await Wolverine();
    }

    [GlobalCleanup(Target = nameof(Wolverine))]
    public async Task CleanupWolverine()
    {
        await _wolverineHost.StopAsync();
        _wolverineHost.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = MessageCount, Description = "raw Channel<T> 1→1")]
    public Task RawChannel() => MessageQueue.Benchmarks.RawChannel.MoveAsync(Item, MessageCount);

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "broker publish → handler (default options, acks on return)")]
    public async Task Broker()
    {
        Task done = _brokerHandled.Expect(MessageCount);
        for (int i = 0; i < MessageCount; i++)
        {
            await _broker.PublishAsync("q", "e", Item);
        }

        await done;
    }

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "MassTransit 8.5.12 in-memory publish → consume")]
    public async Task MassTransit()
    {
        Task done = _massTransitHandled.Expect(MessageCount);
        for (int i = 0; i < MessageCount; i++)
        {
            await _massTransitBus.Publish(Item);
        }

        await done;
    }

    [Benchmark(OperationsPerInvoke = MessageCount, Description = "Wolverine 6.64.2 local queue publish → handler")]
    public async Task Wolverine()
    {
        Task done = _wolverineHandled.Expect(MessageCount);
        for (int i = 0; i < MessageCount; i++)
        {
            await _wolverineBus.PublishAsync(Item);
        }

        await done;
    }
}
