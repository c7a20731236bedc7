using System.Globalization;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;
using Xunit.Abstractions;

namespace MessageQueue.Tests;

/// <summary>
/// A seeded simulation of guarantees 5 and 6 over time. One driver takes random steps: publish, read,
/// ack, nack (with the backoff or at once), reject, leave a delivery to time out, detach and reattach
/// competing consumers, and move the manual clock. Every step is synchronous, so a seed replays the same
/// run exactly (set MQ_SIMULATION_SEED). At the end every message must have been acked exactly once or
/// dead-lettered exactly once, with a reason, in every subscription it matched, and nothing may be left.
/// The threaded stress test (StressTests) covers the races; this one covers time.
/// </summary>
public sealed class DeliverySimulationTests(ITestOutputHelper output)
{
    private static readonly string[] Events = ["order.created", "order.paid", "invoice.sent", "invoice.void"];

    private sealed class SimulatedSubscription(string name, string filter, Func<string, bool> matches, SubscriptionOptions options)
    {
        public string Name { get; } = name;

        public string Filter { get; } = filter;

        public Func<string, bool> Matches { get; } = matches;

        public SubscriptionOptions Options { get; } = options;

        public List<Subscription<TestEvent>> Consumers { get; } = [];

        public List<(Subscription<TestEvent> Consumer, Delivery<TestEvent> Delivery)> Held { get; } = [];

        public HashSet<Guid> Expected { get; } = [];

        public Dictionary<Guid, int> Acked { get; } = [];

        public Dictionary<Guid, int> DeadLettered { get; } = [];
    }

    [Fact]
    [Trait("Guarantee", "5")]
    [Trait("Guarantee", "6")]
    [Trait("Guarantee", "1")]
    public async Task RandomSettlementOverTime_EveryMessageAckedOrDeadLetteredExactlyOncePerSubscription()
    {
        int seed = Environment.GetEnvironmentVariable("MQ_SIMULATION_SEED") is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : 3_2026;
        output.WriteLine($"simulation seed {seed} (replay with MQ_SIMULATION_SEED={seed})");
        var random = new Random(seed);
        var clock = new ManualTimeProvider();
        await using var broker = new Broker(new BrokerOptions { TimeProvider = clock, ShutdownTimeout = TimeSpan.Zero });
        broker.DeclareQueue<TestEvent>("sim", new QueueOptions { MaxMessages = 256 });
        TimeSpan[] backoff = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3)];
        SimulatedSubscription[] subscriptions =
        [
            new("orders", "order.*", e => e.StartsWith("order.", StringComparison.Ordinal),
                new SubscriptionOptions { Name = "orders", MaxInFlight = 4, MaxDeliveries = 4, AckTimeout = TimeSpan.FromSeconds(5), RedeliveryDelays = backoff }),
            new("everything", "#", _ => true,
                new SubscriptionOptions { Name = "everything", MaxInFlight = 8, MaxDeliveries = 3, RedeliveryDelays = backoff }),
            new("paid", "*.paid", e => e.EndsWith(".paid", StringComparison.Ordinal),
                new SubscriptionOptions { Name = "paid", MaxInFlight = 1, MaxDeliveries = 5, AckTimeout = TimeSpan.FromSeconds(2), RedeliveryDelays = [] }),
        ];
        Subscription<TestEvent> deadLetters = await broker.SubscribeAsync<TestEvent>("sim.$dlq", "#");

        async Task AttachAsync(SimulatedSubscription subscription) =>
            subscription.Consumers.Add(await broker.SubscribeAsync<TestEvent>("sim", subscription.Filter, subscription.Options));

        foreach (SimulatedSubscription subscription in subscriptions)
        {
            await AttachAsync(subscription);
        }

        var counts = new Dictionary<string, int>();
        void Count(string what) => counts[what] = counts.GetValueOrDefault(what) + 1;

        async Task DrainDeadLettersAsync()
        {
            while (deadLetters.TryRead(out Delivery<TestEvent> dead))
            {
                SimulatedSubscription source = subscriptions.Single(s => s.Name == dead.Message.Headers[MessageHeaders.SourceSubscription]);
                dead.Message.Headers[MessageHeaders.DeadLetterReason].Should().BeOneOf(DeadLetterReasons.Rejected, DeadLetterReasons.MaxDeliveries, DeadLetterReasons.Expired);
                source.DeadLettered[dead.Message.Id] = source.DeadLettered.GetValueOrDefault(dead.Message.Id) + 1;
                await dead.AckAsync();
            }
        }

        int number = 0;
        for (int step = 0; step < 30_000; step++)
        {
            SimulatedSubscription subscription = subscriptions[random.Next(subscriptions.Length)];
            int roll = random.Next(100);
            if (roll < 25)
            {
                string eventName = Events[random.Next(Events.Length)];
                var options = new PublishOptions { TimeToLive = random.Next(10) == 0 ? TimeSpan.FromSeconds(4) : null };
                if (broker.TryPublish("sim", eventName, new TestEvent(number++, eventName), options, out PublishReceipt receipt))
                {
                    foreach (SimulatedSubscription matching in subscriptions.Where(s => s.Matches(eventName)))
                    {
                        matching.Expected.Add(receipt.MessageId);
                    }

                    Count("published");
                }
            }
            else if (roll < 55 && subscription.Consumers.Count > 0)
            {
                Subscription<TestEvent> consumer = subscription.Consumers[random.Next(subscription.Consumers.Count)];
                if (consumer.TryRead(out Delivery<TestEvent> delivery))
                {
                    subscription.Held.Add((consumer, delivery));
                }
            }
            else if (roll < 85 && subscription.Held.Count > 0)
            {
                int index = random.Next(subscription.Held.Count);
                Delivery<TestEvent> delivery = subscription.Held[index].Delivery;
                subscription.Held.RemoveAt(index);
                int action = random.Next(100);
                if (action < 70)
                {
                    if (await delivery.AckAsync())
                    {
                        subscription.Acked[delivery.Message.Id] = subscription.Acked.GetValueOrDefault(delivery.Message.Id) + 1;
                        Count("acked");
                    }
                    else
                    {
                        Count("stale ack");
                    }
                }
                else if (action < 80)
                {
                    Count(await delivery.NackAsync() ? "nacked with backoff" : "stale nack");
                }
                else if (action < 85)
                {
                    Count(await delivery.NackAsync(TimeSpan.Zero) ? "nacked at once" : "stale nack");
                }
                else if (action < 90)
                {
                    Count(await delivery.RejectAsync("simulated") ? "rejected" : "stale reject");
                }
                else
                {
                    Count("left to time out"); // forgotten: its ack deadline, or its consumer's detach, brings it back
                }
            }
            else if (roll < 90)
            {
                // Detach a consumer (what it holds goes back) and attach one or two again: competing consumers.
                if (subscription.Consumers.Count > 0)
                {
                    Subscription<TestEvent> leaving = subscription.Consumers[random.Next(subscription.Consumers.Count)];
                    subscription.Consumers.Remove(leaving);
                    subscription.Held.RemoveAll(h => h.Consumer == leaving);
                    await leaving.DisposeAsync();
                    Count("detached");
                }

                if (subscription.Consumers.Count < 3)
                {
                    await AttachAsync(subscription);
                }
            }
            else
            {
                clock.Advance(TimeSpan.FromMilliseconds(random.Next(100, 3000)));
            }

            await DrainDeadLettersAsync();
        }

        // Wind down: forget what is held (deadlines and detaches bring it back), then ack everything
        // still coming, moving the clock past every backoff and deadline.
        foreach (SimulatedSubscription subscription in subscriptions)
        {
            subscription.Held.Clear();
            foreach (Subscription<TestEvent> consumer in subscription.Consumers)
            {
                await consumer.DisposeAsync();
            }

            subscription.Consumers.Clear();
            await AttachAsync(subscription);
        }

        for (int round = 0; round < 200 && broker.GetSnapshot().Queue("sim").Depth > 0; round++)
        {
            foreach (SimulatedSubscription subscription in subscriptions)
            {
                while (subscription.Consumers[0].TryRead(out Delivery<TestEvent> delivery))
                {
                    (await delivery.AckAsync()).Should().BeTrue();
                    subscription.Acked[delivery.Message.Id] = subscription.Acked.GetValueOrDefault(delivery.Message.Id) + 1;
                }
            }

            clock.Advance(TimeSpan.FromSeconds(5));
            await DrainDeadLettersAsync();
        }

        output.WriteLine(string.Join(", ", counts.OrderBy(c => c.Key).Select(c => $"{c.Key} {c.Value}")));
        foreach (SimulatedSubscription subscription in subscriptions)
        {
            string because = $"subscription '{subscription.Name}' (seed {seed})";
            subscription.Acked.Keys.Intersect(subscription.DeadLettered.Keys).Should().BeEmpty($"nothing is both acked and dead-lettered in {because}");
            subscription.Acked.Keys.Concat(subscription.DeadLettered.Keys).Should().BeEquivalentTo(subscription.Expected, $"every message it matched is acked or dead-lettered, none missing and none extra, in {because}");
            subscription.Acked.Values.Should().OnlyContain(n => n == 1, $"nothing is acked twice in {because}");
            subscription.DeadLettered.Values.Should().OnlyContain(n => n == 1, $"nothing is dead-lettered twice in {because}");
            subscription.DeadLettered.Should().NotBeEmpty($"the run must dead-letter some messages in {because}");
        }

        QueueSnapshot queue = broker.GetSnapshot().Queue("sim");
        queue.Depth.Should().Be(0, $"nothing is left (seed {seed})");
        queue.Subscriptions.Should().OnlyContain(s => s.Backlog == 0 && s.InFlight == 0);
        queue.Subscriptions.Sum(s => s.TimedOut).Should().BePositive("the run must exercise ack deadlines");
        queue.Subscriptions.Sum(s => s.Expired).Should().BePositive("the run must exercise expiry");
        counts.GetValueOrDefault("nacked with backoff").Should().BePositive();
        counts.GetValueOrDefault("rejected").Should().BePositive();
        counts.GetValueOrDefault("detached").Should().BePositive();
        await deadLetters.DisposeAsync();
    }
}
