using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.Tests.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace MessageQueue.Tests;

/// <summary>
/// The hot-path allocation budget, gated in CI: at most one allocation per publish (the shared
/// envelope, 64 bytes: one cache line), and nothing per delivery, per ack or per extra subscriber. Allocation
/// counts repeat exactly, so this is a deterministic unit test, unlike timings.
/// </summary>
[Collection(GlobalListeners.Name)]
public sealed class AllocationTests(ITestOutputHelper output)
{
    private const int Messages = 10_000;
    private const int Batch = 500;
    private const long EnvelopeBudget = 64;

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task PublishDeliverAck_SteadyState_AllocatesOnlyTheEnvelope(int subscriptions)
    {
        await using var broker = new Broker();
        broker.DeclareQueue<TestEvent>("hot", new QueueOptions { MaxMessages = Batch * 2 });
        var subscribers = new List<Subscription<TestEvent>>();
        for (int i = 0; i < subscriptions; i++)
        {
            subscribers.Add(await broker.SubscribeAsync<TestEvent>("hot", "e", new SubscriptionOptions { Name = "s" + i, MaxInFlight = Batch }));
        }

        var payload = new TestEvent(1);
        Func<bool> publish = () => broker.TryPublish("hot", "e", payload, out _);

        double perMessage = AllocatedPerMessage(count => PublishAndDrain(subscribers, count, publish), $"{subscriptions} subscription(s)");

        perMessage.Should().BeLessThanOrEqualTo(EnvelopeBudget, $"publishing, delivering to {subscriptions} subscription(s) and acking allocates only the envelope");
        broker.GetSnapshot().Queue("hot").Depth.Should().Be(0);
    }

    [Fact]
    public async Task PublishAsync_WithNobodyListening_AllocatesOnlyTheEnvelope()
    {
        // PublishAsync checks for metric and trace listeners on every call; with none, the check is all it costs,
        // and a publish into a queue with room completes synchronously, without a task.
        await using var broker = new Broker();
        broker.DeclareQueue<TestEvent>("hot", new QueueOptions { MaxMessages = Batch * 2 });
        Subscription<TestEvent> subscriber = await broker.SubscribeAsync<TestEvent>("hot", "#", new SubscriptionOptions { MaxInFlight = Batch });
        var payload = new TestEvent(1);
        Func<bool> publish = () => CompletedAtOnce(broker.PublishAsync("hot", "e", payload));
        Subscription<TestEvent>[] subscribers = [subscriber];

        double perMessage = AllocatedPerMessage(count => PublishAndDrain(subscribers, count, publish), "PublishAsync, nobody listening");

        perMessage.Should().BeLessThanOrEqualTo(EnvelopeBudget, "no span, no injected headers and no measurement without a listener");
        await subscriber.DisposeAsync();
    }

    [Fact]
    public async Task RouteCacheMisses_ManyNamesPastNonMatchingWildcards_AllocateOnlyTheEnvelope()
    {
        // Names with an id in them, four times as many as the route cache holds, cycling: most publishes miss the cache
        // and walk the subscription trie, past 1 000 wildcard subscriptions that match none of them.
        await using var broker = new Broker();
        broker.DeclareQueue<TestEvent>("hot", new QueueOptions { MaxMessages = Batch * 2 });
        var others = new List<Subscription<TestEvent>>();
        for (int i = 0; i < 1_000; i++)
        {
            others.Add(await broker.SubscribeAsync<TestEvent>("hot", $"other.{i}.*"));
        }

        Subscription<TestEvent> subscriber = await broker.SubscribeAsync<TestEvent>("hot", "*.results", new SubscriptionOptions { MaxInFlight = Batch });
        string[] names = [.. Enumerable.Range(0, 4 * RouteTable<TestEvent>.MaxCachedRoutes).Select(i => $"ep{i}.results")];
        int next = 0;
        var payload = new TestEvent(1);
        Func<bool> publish = () => broker.TryPublish("hot", names[next++ % names.Length], payload, out _);
        Subscription<TestEvent>[] subscribers = [subscriber];

        double perMessage = AllocatedPerMessage(count => PublishAndDrain(subscribers, count, publish), "route cache misses");

        perMessage.Should().BeLessThanOrEqualTo(EnvelopeBudget, "a miss walks the trie and finds its shared route without allocating");
        others.Count(s => s.TryRead(out Delivery<TestEvent> _)).Should().Be(0, "no name matches 'other.N.*'");
    }

    [Fact]
    [Trait("Guarantee", "8")]
    public async Task AClientPublishingUnderAuthorizationRules_AllocatesOnlyTheEnvelope_OnceItsDecisionIsCached()
    {
        var options = new BrokerOptions();
        options.AuthorizationRules.Add(AuthorizationRule.AllowPublish("*", "hot", "{client}.e"));
        await using var broker = new Broker(options);
        broker.DeclareQueue<TestEvent>("hot", new QueueOptions { MaxMessages = Batch * 2 });
        await using BrokerClient client = broker.Connect("ep42");
        Subscription<TestEvent> subscriber = await broker.SubscribeAsync<TestEvent>("hot", "#", new SubscriptionOptions { MaxInFlight = Batch });
        var payload = new TestEvent(1);
        Func<bool> publish = () => client.TryPublish("hot", "ep42.e", payload, out _);
        Subscription<TestEvent>[] subscribers = [subscriber];

        double perMessage = AllocatedPerMessage(count => PublishAndDrain(subscribers, count, publish), "client under rules");

        perMessage.Should().BeLessThanOrEqualTo(EnvelopeBudget, "an authorized publish costs a cached lookup, not an allocation");
        await subscriber.DisposeAsync();
    }

    /// <summary>
    /// Runs the scenario once to warm up (every ring buffer and table grows to its working size, the JIT settles), then
    /// again, measuring what this thread allocates per message. The delegates are made before the measurement.
    /// </summary>
    private double AllocatedPerMessage(Action<int> run, string what)
    {
        run(Messages);

        // No collection during the measurement: one that runs in the middle can leave part of the thread's allocation
        // context (less than an 8 KB quantum) in the counter, a few bytes per run that are not the path's.
        bool noCollection = GC.TryStartNoGCRegion(64 * 1024 * 1024);
        long allocated;
        try
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            run(Messages);
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        finally
        {
            if (noCollection && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion)
            {
                GC.EndNoGCRegion();
            }
        }

        double perMessage = (double)allocated / Messages;
        output.WriteLine($"{what}: {allocated} B for {Messages} messages, {perMessage:0.##} B per message");
        return perMessage;
    }

    /// <summary>
    /// Publish a batch, then read and ack it on every subscription, all on this thread so the allocation counter
    /// sees everything. Checks are plain ifs, and loops index: assertion objects and boxed enumerators would allocate
    /// inside the measurement.
    /// </summary>
    private static void PublishAndDrain(IReadOnlyList<Subscription<TestEvent>> subscribers, int count, Func<bool> publishOne)
    {
        for (int done = 0; done < count; done += Batch)
        {
            for (int i = 0; i < Batch; i++)
            {
                if (!publishOne())
                {
                    throw new InvalidOperationException("A publish did not go through at once: the queue had no room.");
                }
            }

            for (int s = 0; s < subscribers.Count; s++)
            {
                ReadAndAck(subscribers[s]);
            }
        }
    }

    /// <summary>Whether a publish completed synchronously: then it holds no task or pooled source to consume.</summary>
    private static bool CompletedAtOnce(ValueTask<PublishReceipt> publish) => publish.IsCompletedSuccessfully;

    /// <summary>Reads and acks one batch, on this thread.</summary>
    private static void ReadAndAck(Subscription<TestEvent> subscriber)
    {
        for (int i = 0; i < Batch; i++)
        {
            if (!subscriber.TryRead(out Delivery<TestEvent> delivery))
            {
                throw new InvalidOperationException("A delivery was missing.");
            }

            ValueTask<bool> ack = delivery.AckAsync();
            if (!ack.IsCompletedSuccessfully || !ack.Result)
            {
                throw new InvalidOperationException("An in-memory ack must complete synchronously and succeed.");
            }
        }
    }
}
