using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing.Tests.Support;
using Xunit;

namespace MessageQueue.Testing.Tests.Harness;

/// <summary>AdvanceTimeAsync runs retry delays, ack timeouts, delayed deliveries and time to live, in order, on the harness's clock.</summary>
public sealed class AdvanceTimeTests
{
    private static readonly DateTimeOffset Start = ManualTimeProvider.DefaultStart;

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task RetrySchedule_RunsInOrder_WithinOneAdvance()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        int calls = 0;
        await using Subscription subscription = await harness.SubscribeAsync<Order>("orders", ["#"], (_, _) =>
        {
            // Fails twice, then succeeds.
            return Interlocked.Increment(ref calls) <= 2 ? throw new InvalidOperationException("not yet") : ValueTask.CompletedTask;
        }, new SubscriptionOptions { Name = "shipping", RedeliveryDelays = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)] });

        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"));
        await harness.AdvanceTimeAsync(TimeSpan.FromSeconds(40));
        await harness.WaitForIdleAsync();

        harness.Nacked.Select(r => (r.Attempt, r.Delay, r.Time - Start, r.Reason)).Should().Equal(
            (1, TimeSpan.FromSeconds(1), TimeSpan.Zero, "not yet"),
            (2, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1), "not yet"));
        harness.Acked.Should().ContainSingle().Which.Should().Match<MessageRecord>(r => r.Attempt == 3 && r.Time == Start.AddSeconds(6));
        harness.Time.GetUtcNow().Should().Be(Start.AddSeconds(40));
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task TwoEphemeralSubscriptions_OneRetryingInItsOnlySlot_AreToldApart()
    {
        // Neither subscription has a name. The retrying one's only slot holds the nacked delivery, so its backlog can
        // move only with the clock; the other one's slots are free. Keyed by name, the two would be summed together
        // and the harness would wait for a move that only the clock can make.
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        int calls = 0;
        await using Subscription retrying = await harness.SubscribeAsync<Order>("orders", ["#"], (_, _) =>
            Interlocked.Increment(ref calls) == 1 ? throw new InvalidOperationException("once") : ValueTask.CompletedTask,
            new SubscriptionOptions { MaxInFlight = 1, RedeliveryDelays = [TimeSpan.FromSeconds(5)] });
        await using Subscription other = await harness.SubscribeAsync<Order>("orders", ["#"], static (_, _) => ValueTask.CompletedTask,
            new SubscriptionOptions { MaxInFlight = 4 });

        for (int i = 1; i <= 3; i++)
        {
            await harness.PublishAsync("orders", "order.created", new Order(i, "tea"));
        }

        await harness.WaitUntilAsync(h => h.Nacked.Count == 1);
        harness.DescribePending().Should().Contain("attempt 1: nacked at +00:00:00, waiting out its retry delay of 00:00:05", "the dump finds the open delivery of the right subscription");

        await harness.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
        await harness.WaitForIdleAsync();

        harness.Acked.Count.Should().Be(6, "3 orders, each acked by both subscriptions");
        harness.Nacked.Should().ContainSingle().Which.Delay.Should().Be(TimeSpan.FromSeconds(5));
        harness.Acked.Where(r => r.Attempt == 2).Should().ContainSingle().Which.Time.Should().Be(Start.AddSeconds(5));
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task TheReadmeExample_FiveMinutes_RunTheDefaultScheduleToTheDeadLetterQueue()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription shipping = await harness.SubscribeAsync<Order>("orders", "order.*", static (delivery, _) =>
            string.IsNullOrEmpty(delivery.Payload.Item) ? throw new InvalidOperationException("no item") : ValueTask.CompletedTask,
            new SubscriptionOptions { Name = "shipping" });

        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"));
        await harness.PublishAsync("orders", "order.created", new Order(2, ""));
        await harness.AdvanceTimeAsync(TimeSpan.FromMinutes(5));
        await harness.WaitForIdleAsync();

        harness.Published.ForEvent("order.created").Count.Should().Be(2);
        harness.Acked.ForSubscription("shipping").Payloads<Order>().Should().Equal(new Order(1, "tea"));
        harness.DeadLettered.Should().ContainSingle().Which.Reason.Should().Be(DeadLetterReasons.MaxDeliveries);
        harness.Delivered.ForMessage(harness.DeadLettered[0].MessageId).Select(r => r.Time - Start).Take(4).Should().Equal(
            TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(6), TimeSpan.FromSeconds(36));
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task LastAttempt_IsDeadLettered_WithItsReason()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription subscription = await harness.SubscribeAsync<Order>("orders", ["#"], static (_, _) => throw new InvalidOperationException("broken"), new SubscriptionOptions { Name = "shipping", MaxDeliveries = 3 });

        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"));
        await harness.AdvanceTimeAsync(TimeSpan.FromMinutes(1));
        await harness.WaitForIdleAsync();

        harness.Delivered.Select(r => r.Attempt).Should().Equal(1, 2, 3);
        MessageRecord dead = harness.DeadLettered.Should().ContainSingle().Subject;
        dead.Reason.Should().Be(DeadLetterReasons.MaxDeliveries);
        dead.Subscription.Should().Be("shipping");
        dead.Attempt.Should().Be(3);
        harness.Broker.GetSnapshot().Queue(Broker.GetDeadLetterQueueName("orders")).Depth.Should().Be(1);
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task AckTimeout_RedeliversWithTheNextAttempt()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription<Order> reader = await harness.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { Name = "slow", AckTimeout = TimeSpan.FromSeconds(30) });
        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"));
        Delivery<Order> first = await reader.ReadAsync().OrHang("attempt 1");

        // The consumer still holds it, so move the clock directly (AdvanceTimeAsync would wait for it to settle).
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        harness.TimedOut.Should().ContainSingle().Which.Attempt.Should().Be(1);
        (await first.AckAsync()).Should().BeFalse("the late ack of a timed-out delivery settles nothing");
        Delivery<Order> second = await reader.ReadAsync().OrHang("attempt 2, after the ack timeout");
        second.Attempt.Should().Be(2);
        await second.AckAsync();
        await harness.WaitForIdleAsync();
    }

    [Fact]
    public async Task TimeToLive_ExpiresAMessageThatWaitedTooLong()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        Subscription<Order> offline = await harness.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { Name = "batch" });
        await offline.DisposeAsync();
        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"), new PublishOptions { TimeToLive = TimeSpan.FromMinutes(5) });
        await harness.PublishAsync("orders", "order.created", new Order(2, "tea"));

        await harness.AdvanceTimeAsync(TimeSpan.FromMinutes(6));
        await using Subscription batch = await harness.SubscribeAsync<Order>("orders", ["#"], static async (d, ct) => await d.AckAsync(ct), new SubscriptionOptions { Name = "batch" });
        await harness.WaitForIdleAsync();

        harness.DeadLettered.Should().ContainSingle().Which.Should().Match<MessageRecord>(r => r.Reason == DeadLetterReasons.Expired && r.GetPayload<Order>().Id == 1);
        harness.Acked.Payloads<Order>().Select(o => o.Id).Should().Equal(2);
    }

    [Fact]
    public async Task NackWithADelay_ComesBackAfterIt_AndNotBefore()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription subscription = await harness.SubscribeAsync<Order>("orders", ["#"], static async (delivery, ct) => await new ValidateOrder().HandleAsync(delivery, ct));
        await harness.PublishAsync("orders", "order.created", new Order(1, "out-of-stock"));

        await harness.AdvanceTimeAsync(TimeSpan.FromSeconds(59));
        harness.Delivered.Should().ContainSingle("the nack asked for a minute");

        await harness.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        harness.Delivered.Select(r => r.Attempt).Should().Equal(1, 2);
        harness.Nacked.Select(r => r.Delay).Should().Equal(TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(2));
    }

    [Fact]
    [Trait("Guarantee", "3")]
    public async Task StrictOrder_ARetryHoldingTheOnlySlot_StillRunsOnTheClock()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        int failures = 0;
        await using Subscription shipping = await harness.SubscribeAsync<Order>("orders", ["#"], (delivery, _) =>
            delivery.Payload.Id == 1 && Interlocked.Increment(ref failures) == 1 ? throw new InvalidOperationException("once") : ValueTask.CompletedTask,
            new SubscriptionOptions { Name = "shipping", MaxInFlight = 1 });

        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"));
        await harness.PublishAsync("orders", "order.created", new Order(2, "tea"));
        await harness.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
        await harness.WaitForIdleAsync();

        harness.Delivered.Select(r => (r.GetPayload<Order>().Id, r.Attempt)).Should().Equal((1, 1), (1, 2), (2, 1));
        harness.Acked.Select(r => r.Time - Start).Should().Equal(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task Dropped_AreRecordedWithTheirReason()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders", new QueueOptions { MaxMessages = 2, Overflow = OverflowPolicy.DropOldest });
        Subscription<Order> offline = await harness.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { Name = "batch" });
        await offline.DisposeAsync();

        for (int i = 1; i <= 3; i++)
        {
            await harness.PublishAsync("orders", "order.created", new Order(i, "tea"));
        }

        MessageRecord dropped = harness.Dropped.Should().ContainSingle().Subject;
        dropped.Reason.Should().Be(nameof(DropReason.QueueOverflow));
        dropped.PayloadType.Should().BeNull("the broker no longer has a dropped message's payload");
        dropped.Sequence.Should().Be(1);
        (await harness.Broker.DeleteSubscriptionAsync("orders", "batch")).Should().BeTrue();
        await harness.WaitForIdleAsync();
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task DroppedToTheDeadLetterQueue_IsWaitedFor_UntilItsSubscriberSettlesIt()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders", new QueueOptions { MaxMessages = 2, Overflow = OverflowPolicy.DropOldest, DeadLetterDrops = true });
        string deadLetters = Broker.GetDeadLetterQueueName("orders");
        await using Subscription triage = await harness.SubscribeAsync<Order>(deadLetters, ["#"], static (_, _) => ValueTask.CompletedTask);
        Subscription<Order> offline = await harness.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { Name = "batch" });
        await offline.DisposeAsync();

        for (int i = 1; i <= 3; i++)
        {
            await harness.PublishAsync("orders", "order.created", new Order(i, "tea"));
        }

        (await harness.Broker.DeleteSubscriptionAsync("orders", "batch")).Should().BeTrue();
        await harness.WaitForIdleAsync();

        harness.DeadLettered.Should().ContainSingle().Which.Reason.Should().Be(DeadLetterReasons.Overflow);
        harness.Acked.ForQueue(deadLetters).Payloads<Order>().Select(o => o.Id).Should().Equal(1);
    }

    [Fact]
    public async Task NegativeDelta_IsRefused_AndTheClockStays()
    {
        await using var harness = new BrokerTestHarness();
        Func<Task> back = () => harness.AdvanceTimeAsync(TimeSpan.FromSeconds(-1));
        (await back.Should().ThrowAsync<ArgumentOutOfRangeException>()).Which.Message.Should().Contain("only moves forward");
        harness.Time.GetUtcNow().Should().Be(Start);
    }
}
