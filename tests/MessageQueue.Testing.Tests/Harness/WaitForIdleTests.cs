using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing.Tests.Support;
using Xunit;

namespace MessageQueue.Testing.Tests.Harness;

/// <summary>WaitForIdleAsync is decided by counts: it waits exactly as long as the work takes, and says what is pending when it cannot finish.</summary>
public sealed class WaitForIdleTests
{
    [Fact]
    public async Task ExactlyThreeCreated_WerePublished_AndAllAcked()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription subscription = await harness.SubscribeAsync<Order>("orders", "order.*", static async (delivery, ct) => await delivery.AckAsync(ct));

        for (int i = 1; i <= 3; i++)
        {
            await harness.PublishAsync("orders", "order.created", new Order(i, "tea"));
        }

        await harness.PublishAsync("orders", "order.cancelled", new Order(1, "tea"));
        await harness.WaitForIdleAsync();

        harness.Published.ForEvent("order.created").Count.Should().Be(3);
        harness.Acked.ForEvent("order.created").Count.Should().Be(3);
        harness.Acked.ForEvent("order.*").Count.Should().Be(4);
        harness.Acked.ForEvent("order.created").Payloads<Order>().Select(o => o.Id).Should().Equal(1, 2, 3);
        harness.Nacked.Should().BeEmpty();
        harness.DeadLettered.Should().BeEmpty();
        harness.Records.Should().OnlyContain(r => r.PayloadType == typeof(Order), "every record of a message carries the type it was published with");
        harness.Records.Should().OnlyContain(r => r.Options.Headers == null && r.Options.TimeToLive == null, "a harness's records leave the publisher's options at their default");
    }

    [Fact]
    public async Task WaitsForAChainOfHandlers_AcrossQueues_AndEverySubscription()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        harness.Broker.DeclareQueue<Shipment>("shipments");
        int shipmentsSeen = 0;

        // orders → (two subscriptions) → one publishes into shipments → a third handler there.
        await using Subscription shipping = await harness.SubscribeAsync<Order>("orders", ["#"], async (delivery, ct) =>
        {
            await harness.PublishAsync("shipments", "order.shipped", new Shipment(delivery.Payload.Id, delivery.Payload.Item), cancellationToken: ct);
            await delivery.AckAsync(ct);
        }, new SubscriptionOptions { Name = "shipping" });
        await using Subscription audit = await harness.SubscribeAsync<Order>("orders", ["#"], static async (delivery, ct) => await delivery.AckAsync(ct), new SubscriptionOptions { Name = "audit" });
        await using Subscription notify = await harness.SubscribeAsync<Shipment>("shipments", ["#"], async (delivery, ct) =>
        {
            Interlocked.Increment(ref shipmentsSeen);
            await delivery.AckAsync(ct);
        });

        for (int i = 1; i <= 50; i++)
        {
            await harness.PublishAsync("orders", "order.created", new Order(i, "tea"));
        }

        await harness.WaitForIdleAsync();

        Volatile.Read(ref shipmentsSeen).Should().Be(50, "idle means the chain ran to its end, not just the first hop");
        harness.Acked.ForQueue("orders").ForSubscription("shipping").Count.Should().Be(50);
        harness.Acked.ForQueue("orders").ForSubscription("audit").Count.Should().Be(50);
        harness.Acked.ForQueue("shipments").Count.Should().Be(50);
        harness.Published.ForQueue("shipments").Payloads<Shipment>().Select(s => s.OrderId).Order().Should().Equal(Enumerable.Range(1, 50));
    }

    [Fact]
    public async Task IsAlreadyIdle_WhenNothingWasPublished_OrNothingWasRouted()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await harness.WaitForIdleAsync();

        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"));
        await harness.WaitForIdleAsync();

        harness.Published.Should().ContainSingle().Which.Sequence.Should().Be(1, "an unrouted message is recorded too");
        harness.Broker.GetSnapshot().Queue("orders").Unrouted.Should().Be(1);
    }

    [Fact]
    public async Task FailsFast_WithTheSubscriptionAndTheCount_WhenADurableSubscriptionHasNoConsumer()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        Subscription<Order> audit = await harness.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { Name = "audit" });
        await audit.DisposeAsync();

        for (int i = 1; i <= 3; i++)
        {
            await harness.PublishAsync("orders", "order.created", new Order(i, "tea"));
        }

        Func<Task> wait = () => harness.WaitForIdleAsync();
        InvalidOperationException timeout = (await wait.Should().ThrowAsync<InvalidOperationException>()).Which;

        timeout.Message.Should().Contain("or a consumer attaches");
        timeout.Message.Should().Contain("3 deliveries owed to subscriptions");
        timeout.Message.Should().Contain("subscription 'audit' (durable, no consumer attached: nothing reads it): backlog 3, in flight 0");
        timeout.Message.Should().Contain("Queue 'orders': depth 3");
    }

    [Fact]
    public async Task TimesOut_NamingTheDeliveryInFlight_AndSinceWhen()
    {
        await using var harness = new BrokerTestHarness(new BrokerTestHarnessOptions { IdleTimeout = TimeSpan.FromMilliseconds(100) });
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription<Order> shipping = await harness.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { Name = "shipping", AckTimeout = Timeout.InfiniteTimeSpan, MaxInFlight = 3 });
        for (int i = 1; i <= 4; i++)
        {
            await harness.PublishAsync("orders", "order.created", new Order(i, "tea"));
        }

        var held = new List<Delivery<Order>> { await shipping.ReadAsync().OrHang("order 1") };
        harness.Time.Advance(TimeSpan.FromSeconds(90));
        held.Add(await shipping.ReadAsync().OrHang("order 2"));
        held.Add(await shipping.ReadAsync().OrHang("order 3"));

        Func<Task> wait = () => harness.WaitForIdleAsync();
        TimeoutException timeout = (await wait.Should().ThrowAsync<TimeoutException>()).Which;

        timeout.Message.Should().Contain("did not become idle within 00:00:00.1000000 (real time)");
        timeout.Message.Should().Contain("Pending: 4 deliveries owed to subscriptions");
        timeout.Message.Should().Contain("subscription 'shipping' (durable, 1 consumer(s)): backlog 1, in flight 3");
        timeout.Message.Should().Contain("#1 'order.created' attempt 1: delivered at +00:00:00 and not settled for 00:01:30 of test-clock time");
        timeout.Message.Should().Contain("#2 'order.created' attempt 1: delivered at +00:01:30 and not settled for 00:00:00 of test-clock time");
        timeout.Message.Should().Contain("#3 'order.created' attempt 1: delivered at +00:01:30");
        timeout.Message.Should().NotContain("#4 'order.created' attempt", "order 4 waits in the backlog, undelivered");
        timeout.Message.Should().Contain("Delivered orders/shipping#1 'order.created' attempt 1");

        // Settled, the same harness is idle at once.
        foreach (Delivery<Order> delivery in held)
        {
            await delivery.AckAsync();
        }

        Delivery<Order> fourth = await shipping.ReadAsync().OrHang("order 4, once a slot was free");
        await fourth.AckAsync();
        await harness.WaitForIdleAsync();
    }

    [Fact]
    public async Task FailsFast_WhenOnlyARetryDelayIsLeft_AndSaysToMoveTheClock()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription subscription = await harness.SubscribeAsync<Order>("orders", ["#"], static (_, _) => throw new InvalidOperationException("boom"), new SubscriptionOptions { Name = "shipping" });
        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"));

        await harness.WaitUntilAsync(h => h.Nacked.Count == 1);
        Func<Task> wait = () => harness.WaitForIdleAsync();
        InvalidOperationException stuck = (await wait.Should().ThrowAsync<InvalidOperationException>()).Which;

        stuck.Message.Should().Contain("nothing can move until the clock does or a consumer attaches: call harness.AdvanceTimeAsync");
        stuck.Message.Should().Contain("1 deliveries owed to subscriptions (1 waiting out a retry delay)");
        stuck.Message.Should().Contain("#1 'order.created' attempt 1: nacked at +00:00:00, waiting out its retry delay of 00:00:01 (due at +00:00:01)");
    }

    [Fact]
    public async Task FailsFast_WhenOnlyADelayedDeliveryIsLeft_AndAdvancingDeliversIt()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription subscription = await harness.SubscribeAsync<Order>("orders", ["#"], static async (delivery, ct) => await delivery.AckAsync(ct));
        await harness.PublishAsync("orders", "order.reminder", new Order(1, "tea"), new PublishOptions { DeliverAfter = TimeSpan.FromMinutes(10) });

        Func<Task> wait = () => harness.WaitForIdleAsync();
        (await wait.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("1 messages held for delayed delivery");
        harness.Published.Should().BeEmpty("a delayed message enters its queue, and gets its sequence, when it is due");

        await harness.AdvanceTimeAsync(TimeSpan.FromMinutes(10));
        await harness.WaitForIdleAsync();
        harness.Acked.Should().ContainSingle().Which.Time.Should().Be(ManualTimeProvider.DefaultStart.AddMinutes(10));
    }

    [Fact]
    public async Task WaitUntil_IsCheckedAfterEveryStep_NotOnATimer()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription<Order> reader = await harness.SubscribeAsync<Order>("orders", "#");

        Task threeDelivered = harness.WaitUntilAsync(h => h.Delivered.Count == 3);
        for (int i = 1; i <= 3; i++)
        {
            await harness.PublishAsync("orders", "order.created", new Order(i, "tea"));
        }

        threeDelivered.IsCompleted.Should().BeFalse("nothing was read yet");
        var read = new List<Delivery<Order>>();
        for (int i = 0; i < 3; i++)
        {
            read.Add(await reader.ReadAsync().OrHang("the next of the three orders"));
        }

        await threeDelivered;
        foreach (Delivery<Order> delivery in read)
        {
            await delivery.AckAsync();
        }

        await harness.WaitForIdleAsync();
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task Dispose_WithADeliveryStillUnsettled_DoesNotWaitOnTheManualClock()
    {
        var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        Subscription<Order> reader = await harness.SubscribeAsync<Order>("orders", "#");
        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"));
        _ = await reader.ReadAsync().OrHang("the delivery left unsettled");

        await harness.DisposeAsync().OrHang("the harness's dispose, with a delivery unsettled");

        Func<Task> publish = () => harness.PublishAsync("orders", "order.created", new Order(2, "tea")).AsTask();
        await publish.Should().ThrowAsync<ObjectDisposedException>();
    }
}
