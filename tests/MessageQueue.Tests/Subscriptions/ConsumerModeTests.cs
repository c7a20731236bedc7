using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.Subscriptions;

/// <summary>Competing and exclusive consumers, slow subscribers with their own bound, and the self-deadlock guard.</summary>
public sealed class ConsumerModeTests : IAsyncLifetime
{
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        _broker = new Broker(new BrokerOptions { ShutdownTimeout = TimeSpan.Zero });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private Task PublishAsync(string queue, int count, int from = 0) =>
        Task.WhenAll(Enumerable.Range(from, count).Select(i => _broker.PublishAsync(queue, "e", new TestEvent(i)).AsTask()));

    private async Task PublishInOrderAsync(string queue, int count, int from = 0)
    {
        for (int i = from; i < from + count; i++)
        {
            await _broker.PublishAsync(queue, "e", new TestEvent(i));
        }
    }

    private static SubscriptionOptions Exclusive(ExclusiveMode mode) => new() { Name = "tasks", Exclusive = mode };

    // ------------------------------------------------------------------ competing consumers

    [Fact]
    [Trait("Guarantee", "2")]
    public async Task CompetingConsumerStopping_GivesBackWhatItHeld_AndAParkedCompetitorGetsItAtOnce()
    {
        // What a stopping hosted handler does before it waits for its running handlers: stop deliveries, give back what is
        // unread, then (later) what its cut-short handlers held. The competitor, parked with room, must not wait for the detach.
        var options = new SubscriptionOptions { Name = "tasks", MaxInFlight = 4 };
        await using Subscription<TestEvent> stopping = await _broker.SubscribeAsync<TestEvent>("q", "#", options);
        await PublishInOrderAsync("q", 4);
        await using Subscription<TestEvent> other = await _broker.SubscribeAsync<TestEvent>("q", "#", options);
        stopping.TryRead(out Delivery<TestEvent> held).Should().BeTrue();
        held.Payload.Number.Should().Be(0);
        Task<Delivery<TestEvent>> parked = other.ReadAsync().AsTask();
        parked.IsCompleted.Should().BeFalse("everything went to the first consumer, whose ring had room for all four");

        var consumer = (IConsumer)stopping;
        consumer.StopDelivering();
        consumer.TakeBackUnread().Should().Be(3);
        (await parked.OrHang("the given-back messages to reach the parked competitor")).Payload.Number.Should().Be(1);
        other.TryRead(out Delivery<TestEvent> second).Should().BeTrue();
        other.TryRead(out Delivery<TestEvent> third).Should().BeTrue();
        (second.Payload.Number, third.Payload.Number).Should().Be((2, 3));

        consumer.TakeBackInFlight().Should().Be(1, "message 0, read and not settled");
        Delivery<TestEvent> back = await other.ReadAsync().AsTask().OrHang("the in-flight message given back");
        (back.Payload.Number, back.Attempt).Should().Be((0, 1), "given back without using up an attempt");
    }

    [Fact]
    [Trait("Guarantee", "2")]
    public async Task CompetingConsumerLeaves_ItsInFlightMessagesGoToTheOthersAtOnce()
    {
        Subscription<TestEvent> a = await _broker.SubscribeAsync<TestEvent>("jobs", "#", new SubscriptionOptions { Name = "pool", MaxInFlight = 3 });
        await using Subscription<TestEvent> b = await _broker.SubscribeAsync<TestEvent>("jobs", "#", new SubscriptionOptions { Name = "pool", MaxInFlight = 10 });
        await PublishInOrderAsync("jobs", 6);
        var held = new List<Delivery<TestEvent>>();
        while (a.TryRead(out Delivery<TestEvent> delivery))
        {
            held.Add(delivery);
        }

        held.Select(d => d.Payload.Number).Should().Equal(0, 2, 4);
        await a.DisposeAsync();

        var numbers = new List<(int, int)>();
        while (b.TryRead(out Delivery<TestEvent> delivery))
        {
            numbers.Add((delivery.Payload.Number, delivery.Attempt));
        }

        numbers.Should().BeEquivalentTo([(1, 1), (3, 1), (5, 1), (0, 2), (2, 2), (4, 2)], "no ack timeout is needed: a leaving consumer gives its messages back");
    }

    // ------------------------------------------------------------------ exclusive: Reject

    [Fact]
    public async Task ExclusiveReject_SecondConsumer_IsRefusedNamingTheHolder()
    {
        await using BrokerClient first = _broker.Connect("endpoint-a");
        Subscription<TestEvent> active = await first.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Reject));
        await using BrokerClient second = _broker.Connect("endpoint-b");

        SubscriptionInUseException error = (await FluentActions.Awaiting(async () => await second.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Reject)))
            .Should().ThrowAsync<SubscriptionInUseException>()).Which;
        (error.Queue, error.Subscription, error.HolderClient, error.HolderClientId).Should().Be(("tasks", "tasks", "endpoint-a", first.Id));
        error.Message.Should().Contain("endpoint-a").And.Contain("ExclusiveMode.Standby");
        await FluentActions.Awaiting(async () => await second.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.None)))
            .Should().ThrowAsync<SubscriptionInUseException>("an exclusive subscription takes no competing consumers");

        await active.DisposeAsync();
        await using Subscription<TestEvent> next = await second.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Reject));
        _broker.GetSnapshot().Queue("tasks").Subscription("tasks").Consumers.Should().Be(1);
    }

    [Fact]
    public async Task ExclusiveReject_WhileCompetingConsumersAreActive_IsRefused()
    {
        await using Subscription<TestEvent> competing = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.None));

        await FluentActions.Awaiting(async () => await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Reject)))
            .Should().ThrowAsync<SubscriptionInUseException>();
    }

    // ------------------------------------------------------------------ exclusive: Standby

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task ExclusiveStandby_ActiveLeavesWithMessagesInFlight_StandbyTakesOverAndGetsThemFirst()
    {
        await using BrokerClient primary = _broker.Connect("primary");
        await using BrokerClient backup = _broker.Connect("backup");
        Subscription<TestEvent> active = await primary.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Standby));
        Subscription<TestEvent> standby = await backup.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Standby));
        await PublishInOrderAsync("tasks", 4);

        Delivery<TestEvent> first = await active.ReadAsync();
        await first.AckAsync();
        Delivery<TestEvent> inFlight = await active.ReadAsync();
        standby.TryRead(out _).Should().BeFalse("a standby receives nothing while the active consumer is there");
        SubscriptionSnapshot state = _broker.GetSnapshot().Queue("tasks").Subscription("tasks");
        (state.Consumers, state.Standby).Should().Be((1, 1));
        _broker.GetSnapshot().Clients.Single(c => c.Name == "backup").Consumers.Single().IsStandby.Should().BeTrue();

        await active.DisposeAsync();

        (await inFlight.AckAsync()).Should().BeFalse();
        var taken = new List<(int, int)>();
        for (int i = 0; i < 3; i++)
        {
            Delivery<TestEvent> delivery = await standby.ReadAsync().OrHang("the standby's deliveries after fail-over");
            taken.Add((delivery.Payload.Number, delivery.Attempt));
            await delivery.AckAsync();
        }

        taken.Should().Equal((1, 2), (2, 1), (3, 1));
        _broker.GetSnapshot().Queue("tasks").Subscription("tasks").Standby.Should().Be(0);
        await standby.DisposeAsync();
    }

    [Fact]
    public async Task ExclusiveStandby_StandbyLeavesFirst_NothingChangesForTheActiveOne()
    {
        await using Subscription<TestEvent> active = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Reject));
        Subscription<TestEvent> standby = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Standby));

        await standby.DisposeAsync();
        await PublishInOrderAsync("tasks", 1);

        (await active.ReadAsync()).Payload.Number.Should().Be(0);
        standby.Completion.IsCompletedSuccessfully.Should().BeTrue();
    }

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task ExclusiveStandby_TwoStandbys_ArePromotedInArrivalOrder_OneFailOverAfterAnother()
    {
        Subscription<TestEvent> active = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Standby));
        Subscription<TestEvent> second = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Standby));
        await using Subscription<TestEvent> third = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Standby));
        await PublishInOrderAsync("tasks", 2);
        (await active.ReadAsync().OrHang("the first delivery")).Payload.Number.Should().Be(0);

        await active.DisposeAsync();
        third.TryRead(out _).Should().BeFalse("the standby that came first takes over first");
        Delivery<TestEvent> failedOver = await second.ReadAsync().OrHang("the first fail-over");
        (failedOver.Payload.Number, failedOver.Attempt).Should().Be((0, 2));
        (_broker.GetSnapshot().Queue("tasks").Subscription("tasks").Consumers, _broker.GetSnapshot().Queue("tasks").Subscription("tasks").Standby).Should().Be((1, 1));

        await second.DisposeAsync();
        var taken = new List<(int, int)>();
        for (int i = 0; i < 2; i++)
        {
            Delivery<TestEvent> delivery = await third.ReadAsync().OrHang("the second fail-over");
            taken.Add((delivery.Payload.Number, delivery.Attempt));
            await delivery.AckAsync();
        }

        taken.Should().Equal([(0, 3), (1, 1)], "0 was read twice before; 1 sat unread in the left consumers' channels, and only a read counts as an attempt");
    }

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task ExclusiveStandby_LastConsumerLeaves_MessagesWaitForTheNextConsumerInOrder()
    {
        Subscription<TestEvent> active = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Standby));
        await PublishInOrderAsync("tasks", 3);
        Delivery<TestEvent> held = await active.ReadAsync().OrHang("the first delivery");

        await active.DisposeAsync();
        await PublishInOrderAsync("tasks", 1, from: 3);
        SubscriptionSnapshot state = _broker.GetSnapshot().Queue("tasks").Subscription("tasks");
        (state.Consumers, state.Standby, state.Backlog).Should().Be((0, 0, 4), "the subscription is durable: with no consumer it keeps everything");
        (await held.AckAsync()).Should().BeFalse();

        await using Subscription<TestEvent> next = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Reject));
        var taken = new List<(int, int)>();
        for (int i = 0; i < 4; i++)
        {
            Delivery<TestEvent> delivery = await next.ReadAsync().OrHang("catch-up");
            taken.Add((delivery.Payload.Number, delivery.Attempt));
            await delivery.AckAsync();
        }

        taken.Should().Equal((0, 2), (1, 1), (2, 1), (3, 1));
    }

    [Fact]
    [Trait("Guarantee", "5")]
    [Trait("Guarantee", "6")]
    public async Task ExclusiveStandby_ActiveLeavesWhileAMessageWaitsOutItsBackoff_StandbyGetsItAtOnce()
    {
        var clock = new ManualTimeProvider();
        await using var broker = new Broker(new BrokerOptions { TimeProvider = clock });
        var options = new SubscriptionOptions { Name = "tasks", Exclusive = ExclusiveMode.Standby, RedeliveryDelays = [TimeSpan.FromMinutes(10)] };
        Subscription<TestEvent> active = await broker.SubscribeAsync<TestEvent>("tasks", "#", options);
        await using Subscription<TestEvent> standby = await broker.SubscribeAsync<TestEvent>("tasks", "#", options);
        await broker.PublishAsync("tasks", "e", new TestEvent(7));
        active.TryRead(out Delivery<TestEvent> delivery).Should().BeTrue();
        await delivery.NackAsync(); // waits ten minutes for its next try

        await active.DisposeAsync();

        standby.TryRead(out Delivery<TestEvent> failedOver).Should().BeTrue("a leaving consumer gives back what waits out a backoff at once, without the clock moving");
        (failedOver.Payload.Number, failedOver.Attempt).Should().Be((7, 2));
        clock.ActiveTimers.Should().Be(0, "the left consumer's backoff timer is gone");
    }

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task ExclusiveTakeOver_NoActiveConsumer_SimplyAttachesAndCatchesUp()
    {
        Subscription<TestEvent> first = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Reject));
        await first.DisposeAsync();
        await PublishInOrderAsync("tasks", 2);

        await using Subscription<TestEvent> taker = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.TakeOver));

        (await taker.ReadAsync().OrHang("catch-up")).Payload.Number.Should().Be(0);
        first.Completion.IsCompletedSuccessfully.Should().BeTrue("it left on its own; nothing took it over");
    }

    // ------------------------------------------------------------------ exclusive: TakeOver

    [Fact]
    [Trait("Guarantee", "2")]
    public async Task ExclusiveTakeOver_ReplacesTheActiveConsumerWhoseCompletionSaysItWasTakenOver()
    {
        Subscription<TestEvent> old = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.Reject));
        await PublishInOrderAsync("tasks", 2);
        Delivery<TestEvent> held = await old.ReadAsync();

        await using Subscription<TestEvent> newer = await _broker.SubscribeAsync<TestEvent>("tasks", "#", Exclusive(ExclusiveMode.TakeOver));

        SubscriptionClosedException closed = (await FluentActions.Awaiting(() => old.Completion).Should().ThrowAsync<SubscriptionClosedException>()).Which;
        (closed.Reason, closed.Queue, closed.Subscription).Should().Be((SubscriptionCloseReason.TakenOver, "tasks", "tasks"));
        (await held.AckAsync()).Should().BeFalse();
        Delivery<TestEvent> again = await newer.ReadAsync().OrHang("the taken-over message");
        (again.Payload.Number, again.Attempt).Should().Be((0, 2));
    }

    // ------------------------------------------------------------------ slow subscribers

    [Fact]
    [Trait("Guarantee", "4")]
    [Trait("Guarantee", "1")]
    public async Task MaxBacklogDropOldest_SlowSubscriptionLosesItsOldestWaitingOnly_OthersGetEverything()
    {
        var dropped = new List<MessageDroppedEventArgs>();
        _broker.MessageDropped += (_, e) => dropped.Add(e);
        await using Subscription<TestEvent> slow = await _broker.SubscribeAsync<TestEvent>("feed", "#", new SubscriptionOptions { Name = "slow", MaxInFlight = 1, MaxBacklog = 3 });
        await using Subscription<TestEvent> fast = await _broker.SubscribeAsync<TestEvent>("feed", "#", new SubscriptionOptions { Name = "fast" });

        await PublishInOrderAsync("feed", 10);

        var slowGot = new List<int>();
        while (slow.TryRead(out Delivery<TestEvent> delivery))
        {
            slowGot.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        slowGot.Should().Equal([0, 7, 8, 9], "it held 0 in flight, kept its newest 3 waiting, and dropped 1 to 6");
        dropped.Should().HaveCount(6).And.OnlyContain(d => d.Subscription == "slow" && d.Reason == DropReason.SubscriptionOverflow);
        var fastGot = new List<int>();
        while (fast.TryRead(out Delivery<TestEvent> delivery))
        {
            fastGot.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        fastGot.Should().Equal(Enumerable.Range(0, 10));
        QueueSnapshot queue = _broker.GetSnapshot().Queue("feed");
        (queue.Subscription("slow").Dropped, queue.Depth).Should().Be((6, 0));
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task MaxBacklogDisconnect_SlowSubscriptionIsCutLooseAndPublishersKeepGoing()
    {
        _broker.DeclareQueue<TestEvent>("feed", new QueueOptions { MaxMessages = 5, Overflow = OverflowPolicy.Reject });
        var dropped = new List<MessageDroppedEventArgs>();
        _broker.MessageDropped += (_, e) => dropped.Add(e);
        Subscription<TestEvent> slow = await _broker.SubscribeAsync<TestEvent>("feed", "#", new SubscriptionOptions { Name = "slow", MaxInFlight = 1, MaxBacklog = 2, BacklogOverflow = BacklogOverflowPolicy.Disconnect });
        await using Subscription<TestEvent> fast = await _broker.SubscribeAsync<TestEvent>("feed", "#", new SubscriptionOptions { Name = "fast" });

        // The fast subscriber keeps up; the slow one never reads. Without its own bound it would fill the
        // queue and Reject would refuse the sixth publish.
        for (int i = 0; i < 20; i++)
        {
            await _broker.PublishAsync("feed", "e", new TestEvent(i));
            await (await fast.ReadAsync()).AckAsync();
        }

        SubscriptionClosedException closed = (await FluentActions.Awaiting(() => slow.Completion).Should().ThrowAsync<SubscriptionClosedException>()).Which;
        closed.Reason.Should().Be(SubscriptionCloseReason.CutLoose);
        QueueSnapshot queue = _broker.GetSnapshot().Queue("feed");
        queue.Subscriptions.Select(s => s.Name).Should().Equal("fast");
        queue.Depth.Should().Be(0);
        dropped.Should().HaveCount(4).And.OnlyContain(d => d.Subscription == "slow" && d.Reason == DropReason.SubscriptionOverflow, "it held one in flight and three waiting when it passed its bound of two");
    }

    // ------------------------------------------------------------------ self-deadlock guard

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task HandlerPublishingIntoItsOwnFullQueue_GetsAnErrorInsteadOfWaiting()
    {
        _broker.DeclareQueue<TestEvent>("loop", new QueueOptions { MaxMessages = 1, PublishTimeout = Timeout.InfiniteTimeSpan });
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription handler = await _broker.SubscribeAsync<TestEvent>("loop", "#", async (_, cancellationToken) =>
        {
            try
            {
                await _broker.PublishAsync("loop", "second", new TestEvent(2), cancellationToken: cancellationToken);
                outcome.TrySetResult(null);
            }
            catch (QueueFullException error)
            {
                outcome.TrySetResult(error);
            }
        });

        await _broker.PublishAsync("loop", "first", new TestEvent(1));

        Exception? error = await outcome.Task.OrHang("the handler's publish to fail instead of waiting forever");
        error.Should().BeOfType<QueueFullException>().Which.Message.Should().Contain("handler of one of its own subscriptions");
    }
}
