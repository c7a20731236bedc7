using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>The broker's metrics, read exactly through a MeterListener scoped to one broker.</summary>
public sealed class MetricsTests : IAsyncLifetime
{
    private readonly ManualTimeProvider _clock = new();
    private Broker _broker = null!;
    private MetricRecorder _metrics = null!;

    public Task InitializeAsync()
    {
        _broker = new Broker(new BrokerOptions { TimeProvider = _clock });
        _metrics = new MetricRecorder(_broker);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _metrics.Dispose();
        await _broker.DisposeAsync();
    }

    [Fact]
    public async Task PublishDeliverAck_AreCounted_WithQueueSubscriptionAndEventTags_AndTheAckLatencyIsExact()
    {
        await using Subscription<TestEvent> durable = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "billing" });
        await using Subscription<TestEvent> ephemeral = await _broker.SubscribeAsync<TestEvent>("orders", "created");
        await _broker.PublishAsync("orders", "created", new TestEvent(1));
        await _broker.PublishAsync("orders", "created", new TestEvent(2));
        await _broker.PublishAsync("orders", "paid", new TestEvent(3));
        _clock.Advance(TimeSpan.FromSeconds(2));

        for (int i = 0; i < 3; i++)
        {
            await (await durable.ReadAsync()).AckAsync();
        }

        for (int i = 0; i < 2; i++)
        {
            await (await ephemeral.ReadAsync()).AckAsync();
        }

        _metrics.Sum("messaging.client.sent.messages").Should().Be(3);
        _metrics.Sum("messaging.client.sent.messages", ("messagequeue.event", "created"), ("messaging.destination.name", "orders"), ("messaging.system", "messagequeue")).Should().Be(2);
        _metrics.Sum("messaging.client.consumed.messages").Should().Be(5);
        _metrics.Sum("messaging.client.consumed.messages", ("messaging.destination.subscription.name", "billing")).Should().Be(3);
        _metrics.Sum("messagequeue.messages.acked").Should().Be(5);
        _metrics.Of("messagequeue.message.ack_latency").Select(r => r.Value).Should().Equal(2.0, 2.0, 2.0, 2.0, 2.0);
        _metrics.Of("messaging.client.consumed.messages").Should().AllSatisfy(r => r.Tags.Keys.Should().NotContain(k => k.Contains("message.id")), "message ids are never tags");
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task NackRedeliveryAndDeadLetter_AreCounted_WithTheReason()
    {
        await using Subscription<TestEvent> worker = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "worker", MaxDeliveries = 2, RedeliveryDelays = [TimeSpan.Zero] });
        await _broker.PublishAsync("orders", "created", new TestEvent(1));

        await (await worker.ReadAsync()).NackAsync();
        Delivery<TestEvent> second = await worker.ReadAsync();
        second.Attempt.Should().Be(2);
        await second.NackAsync();

        _metrics.Sum("messagequeue.messages.nacked").Should().Be(2);
        _metrics.Sum("messagequeue.messages.redelivered").Should().Be(1);
        _metrics.Sum("messagequeue.messages.dead_lettered", ("messagequeue.dead_letter.reason", DeadLetterReasons.MaxDeliveries), ("messaging.destination.subscription.name", "worker")).Should().Be(1);
        _metrics.Sum("messaging.client.sent.messages").Should().Be(1, "a dead letter entering its dead-letter queue is not a publish");
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task Drops_AreCounted_WithThePolicy_AndExpiryIsCountedToo()
    {
        _broker.DeclareQueue<TestEvent>("bounded", new QueueOptions { MaxMessages = 2, Overflow = OverflowPolicy.DropOldest, DeadLetters = false });
        Subscription<TestEvent> offline = await _broker.SubscribeAsync<TestEvent>("bounded", "#", new SubscriptionOptions { Name = "batch" });
        await offline.DisposeAsync();
        for (int i = 1; i <= 3; i++)
        {
            await _broker.PublishAsync("bounded", "e", new TestEvent(i));
        }

        _broker.DeclareQueue<TestEvent>("perishable");
        await using Subscription<TestEvent> reader = await _broker.SubscribeAsync<TestEvent>("perishable", "#");
        await _broker.PublishAsync("perishable", "e", new TestEvent(1), new PublishOptions { TimeToLive = TimeSpan.FromSeconds(5) });
        await _broker.PublishAsync("perishable", "e", new TestEvent(2));
        _clock.Advance(TimeSpan.FromSeconds(6));
        (await reader.ReadAsync()).Payload.Number.Should().Be(2);

        _metrics.Sum("messagequeue.messages.dropped", ("messagequeue.drop.reason", "queue_overflow"), ("messaging.destination.name", "bounded")).Should().Be(1);
        _metrics.Sum("messagequeue.messages.expired", ("messaging.destination.name", "perishable")).Should().Be(1);
        _metrics.Sum("messagequeue.messages.dead_lettered", ("messagequeue.dead_letter.reason", DeadLetterReasons.Expired)).Should().Be(1);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task UnroutedPublishes_AreCounted_WithQueueAndEvent_AsTheSnapshotCountsThem()
    {
        _broker.DeclareQueue<TestEvent>("orders");
        await using Subscription<TestEvent> shipping = await _broker.SubscribeAsync<TestEvent>("orders", "order.placed");
        await _broker.PublishAsync("orders", "order.placed", new TestEvent(1));
        await _broker.PublishAsync("orders", "order.cancelled", new TestEvent(2));
        await _broker.PublishAsync("ordres", "order.placed", new TestEvent(3));
        _broker.TryPublish("ordres", "order.placed", new TestEvent(4), out _).Should().BeTrue();

        _metrics.Sum("messagequeue.messages.unrouted", ("messaging.destination.name", "orders"), ("messagequeue.event", "order.cancelled")).Should().Be(1);
        _metrics.Sum("messagequeue.messages.unrouted", ("messaging.destination.name", "ordres"), ("messagequeue.event", "order.placed")).Should().Be(2);
        _metrics.Sum("messagequeue.messages.unrouted").Should().Be(3, "the routed message is not counted");
        BrokerSnapshot snapshot = _broker.GetSnapshot();
        (snapshot.Queue("orders").Unrouted, snapshot.Queue("ordres").Unrouted).Should().Be((1L, 2L));
    }

    [Fact]
    public async Task Gauges_ReportDepthBacklogAndInFlight_AsTheSnapshotDoes()
    {
        await using Subscription<TestEvent> worker = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 2 });
        for (int i = 1; i <= 5; i++)
        {
            await _broker.PublishAsync("orders", "e", new TestEvent(i));
        }

        _ = await worker.ReadAsync();

        _metrics.Observe("messagequeue.queue.depth").Should().ContainSingle(r => r.Has("messaging.destination.name", "orders")).Which.Value.Should().Be(5);
        _metrics.Observe("messagequeue.subscription.backlog").Should().ContainSingle(r => r.Has("messaging.destination.subscription.name", "worker")).Which.Value.Should().Be(3);
        _metrics.Observe("messagequeue.subscription.in_flight").Should().ContainSingle(r => r.Has("messaging.destination.subscription.name", "worker")).Which.Value.Should().Be(2);
    }

    [Fact]
    public async Task EventTags_AreBoundedPerQueue_TheRestIsOther()
    {
        await using Subscription<TestEvent> all = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { AutoAck = true });
        for (int i = 0; i < 150; i++)
        {
            await _broker.PublishAsync("orders", $"e{i}", new TestEvent(i));
        }

        IReadOnlyList<Recorded> sent = _metrics.Of("messaging.client.sent.messages");
        sent.Select(r => r.Tags["messagequeue.event"]).Distinct().Should().HaveCount(101, "100 event names, then _other");
        sent.Count(r => r.Has("messagequeue.event", "_other")).Should().Be(50);
    }

    [Fact]
    public async Task HandlerProcessing_AndPublishDuration_AreMeasuredOnTheBrokersClock()
    {
        _broker.DeclareQueue<TestEvent>("strict", new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.Reject });
        await using Subscription handler = await _broker.SubscribeAsync<TestEvent>("orders", "#", (delivery, _) =>
        {
            _clock.Advance(TimeSpan.FromMilliseconds(delivery.Payload.Number == 1 ? 250 : 500));
            return delivery.Payload.Number == 2 ? throw new InvalidOperationException("no") : ValueTask.CompletedTask;
        }, new SubscriptionOptions { Name = "handler", MaxDeliveries = 1 });

        await _broker.PublishAsync("orders", "e", new TestEvent(1));
        await _broker.PublishAsync("orders", "e", new TestEvent(2));
        Subscription<TestEvent> offline = await _broker.SubscribeAsync<TestEvent>("strict", "#", new SubscriptionOptions { Name = "batch" });
        await offline.DisposeAsync();
        await _broker.PublishAsync("strict", "e", new TestEvent(3));
        Func<Task> full = () => _broker.PublishAsync("strict", "e", new TestEvent(4)).AsTask();
        await full.Should().ThrowAsync<QueueFullException>();
        await _metrics.WaitFor("messaging.process.duration", 2).OrHang("two handler calls measured");

        IReadOnlyList<Recorded> processed = _metrics.Of("messaging.process.duration");
        processed.Select(r => r.Value).Should().Equal(0.25, 0.5);
        processed[1].Tags["error.type"].Should().Be(typeof(InvalidOperationException).FullName);
        processed.Should().AllSatisfy(r => r.Has("messaging.operation.name", "process").Should().BeTrue());
        IReadOnlyList<Recorded> publishes = _metrics.Of("messaging.client.operation.duration");
        publishes.Should().HaveCount(4);
        publishes.Should().ContainSingle(r => r.Tags.ContainsKey("error.type")).Which.Tags["error.type"].Should().Be(typeof(QueueFullException).FullName);
    }

    [Fact]
    public async Task AnotherBrokersListener_SeesNothingOfThisOne()
    {
        await using var other = new Broker(new BrokerOptions { TimeProvider = _clock });
        using var otherMetrics = new MetricRecorder(other);
        await using Subscription<TestEvent> reader = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { AutoAck = true });
        await _broker.PublishAsync("orders", "e", new TestEvent(1));

        otherMetrics.All.Should().BeEmpty();
        _metrics.Sum("messaging.client.sent.messages").Should().Be(1);
    }
}
