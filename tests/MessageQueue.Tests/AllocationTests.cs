using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.Tests.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace MessageQueue.Tests;

/// <summary>
/// The hot-path allocation budget, gated in CI: at most one allocation per publish (the shared
/// envelope, at most 96 bytes), and nothing per delivery, per ack or per extra subscriber. Allocation
/// counts repeat exactly, so this is a deterministic unit test, unlike timings.
/// </summary>
[Collection(GlobalListeners.Name)]
public sealed class AllocationTests(ITestOutputHelper output)
{
    private const int Messages = 10_000;
    private const int Batch = 500;
    private const long EnvelopeBudget = 96;

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

        // Warm up: grow every ring buffer and table to its working size, and let the JIT settle.
        RunSynchronously(broker, subscribers, payload, Messages);

        long before = GC.GetAllocatedBytesForCurrentThread();
        RunSynchronously(broker, subscribers, payload, Messages);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        double perMessage = (double)allocated / Messages;
        output.WriteLine($"{subscriptions} subscription(s): {allocated} B for {Messages} messages, {perMessage:0.##} B per message");
        perMessage.Should().BeLessThanOrEqualTo(
            EnvelopeBudget,
            $"publishing, delivering to {subscriptions} subscription(s) and acking allocated {allocated} bytes for {Messages} messages ({perMessage:0.##} B each)");
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

        PublishAsyncAndDrain(broker, subscriber, payload, Messages);
        long before = GC.GetAllocatedBytesForCurrentThread();
        PublishAsyncAndDrain(broker, subscriber, payload, Messages);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        double perMessage = (double)allocated / Messages;
        output.WriteLine($"PublishAsync, nobody listening: {allocated} B for {Messages} messages, {perMessage:0.##} B per message");
        perMessage.Should().BeLessThanOrEqualTo(EnvelopeBudget, "no span, no injected headers and no measurement without a listener");
        await subscriber.DisposeAsync();
    }

    private static void PublishAsyncAndDrain(Broker broker, Subscription<TestEvent> subscriber, TestEvent payload, int count)
    {
        for (int done = 0; done < count; done += Batch)
        {
            for (int i = 0; i < Batch; i++)
            {
                ValueTask<PublishReceipt> publish = broker.PublishAsync("hot", "e", payload);
                if (!publish.IsCompletedSuccessfully)
                {
                    throw new InvalidOperationException("An in-memory publish into a queue with room must complete synchronously.");
                }
            }

            ReadAndAck(subscriber);
        }
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

        PublishAndDrain(client, subscriber, payload, Messages);
        long before = GC.GetAllocatedBytesForCurrentThread();
        PublishAndDrain(client, subscriber, payload, Messages);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        double perMessage = (double)allocated / Messages;
        output.WriteLine($"client under rules: {allocated} B for {Messages} messages, {perMessage:0.##} B per message");
        perMessage.Should().BeLessThanOrEqualTo(EnvelopeBudget, "an authorized publish costs a cached lookup, not an allocation");
        await subscriber.DisposeAsync();
    }

    private static void PublishAndDrain(BrokerClient client, Subscription<TestEvent> subscriber, TestEvent payload, int count)
    {
        for (int done = 0; done < count; done += Batch)
        {
            for (int i = 0; i < Batch; i++)
            {
                if (!client.TryPublish("hot", "ep42.e", payload, out _))
                {
                    throw new InvalidOperationException("The queue had no room.");
                }
            }

            ReadAndAck(subscriber);
        }
    }

    /// <summary>
    /// Publish a batch, then read and ack it everywhere, all on this thread so the allocation counter
    /// sees everything. Checks are plain ifs: assertion objects would allocate inside the measurement.
    /// </summary>
    private static void RunSynchronously(Broker broker, List<Subscription<TestEvent>> subscribers, TestEvent payload, int count)
    {
        for (int done = 0; done < count; done += Batch)
        {
            for (int i = 0; i < Batch; i++)
            {
                if (!broker.TryPublish("hot", "e", payload, out _))
                {
                    throw new InvalidOperationException("The queue had no room.");
                }
            }

            foreach (Subscription<TestEvent> subscriber in subscribers)
            {
                ReadAndAck(subscriber);
            }
        }
    }

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
