using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.Queues;

/// <summary>Guarantee 4 (bounded memory) and the overflow side of guarantee 1 (drops are counted and raised).</summary>
public sealed class OverflowTests : IAsyncLifetime
{
    private readonly ManualTimeProvider _clock = new();
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        // No shutdown wait: it runs on the manual clock, which nothing moves once a test ends, so a dispose that waited
        // for a delivery a failed test read and never settled would never time out, and the failure would be a hang.
        _broker = new Broker(new BrokerOptions { TimeProvider = _clock, ShutdownTimeout = TimeSpan.Zero });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private async Task<Subscription<TestEvent>> FullQueueAsync(string queue, OverflowPolicy policy, int max = 3, TimeSpan? timeout = null)
    {
        _broker.DeclareQueue<TestEvent>(queue, new QueueOptions { MaxMessages = max, Overflow = policy, PublishTimeout = timeout ?? TimeSpan.FromSeconds(5) });
        Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>(queue, "#", new SubscriptionOptions { Name = "only", MaxInFlight = 1 });
        for (int i = 0; i < max; i++)
        {
            await _broker.PublishAsync(queue, "e", new TestEvent(i));
        }

        _broker.GetSnapshot().Queue(queue).Depth.Should().Be(max);
        return subscription;
    }

    // ------------------------------------------------------------------ Wait

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_WaitPolicyFullQueue_WaitsUntilAnAckMakesRoom()
    {
        Subscription<TestEvent> subscription = await FullQueueAsync("wait", OverflowPolicy.Wait);

        ValueTask<PublishReceipt> blocked = _broker.PublishAsync("wait", "e", new TestEvent(3));
        blocked.IsCompleted.Should().BeFalse("the queue holds MaxMessages unsettled messages");
        _broker.GetSnapshot().Queue("wait").WaitingPublishers.Should().Be(1);

        Delivery<TestEvent> first = await subscription.ReadAsync();
        blocked.IsCompleted.Should().BeFalse("reading does not settle; only the ack frees room");
        await first.AckAsync();

        PublishReceipt receipt = await blocked.OrHang("the waiting publish");
        receipt.Sequence.Should().Be(4);
        _broker.GetSnapshot().Queue("wait").Depth.Should().Be(3);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_SeveralWaitingPublishers_AreServedInArrivalOrder()
    {
        Subscription<TestEvent> subscription = await FullQueueAsync("fifo", OverflowPolicy.Wait);
        var waiting = new List<Task<PublishReceipt>>();
        for (int i = 10; i < 13; i++)
        {
            waiting.Add(_broker.PublishAsync("fifo", "e", new TestEvent(i)).AsTask());
        }

        // Each ack makes room for exactly one publisher: the one that has waited longest.
        for (int i = 0; i < 3; i++)
        {
            await (await subscription.ReadAsync().OrHang($"delivery {i}")).AckAsync();
            PublishReceipt receipt = await waiting[i].OrHang($"waiting publisher {i}");
            receipt.Sequence.Should().Be(4 + i);
            waiting.Skip(i + 1).Should().NotContain(t => t.IsCompleted, "later arrivals keep waiting");
        }

        var numbers = new List<int>();
        for (int i = 0; i < 3; i++)
        {
            Delivery<TestEvent> delivery = await subscription.ReadAsync().OrHang("delivery");
            numbers.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        numbers.Should().Equal(10, 11, 12);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_WaitPolicyTimeoutPasses_ThrowsQueueFullAndPublishesNothing()
    {
        await FullQueueAsync("timeout", OverflowPolicy.Wait, timeout: TimeSpan.FromSeconds(5));

        Task<PublishReceipt> blocked = _broker.PublishAsync("timeout", "e", new TestEvent(3)).AsTask();
        _clock.Advance(TimeSpan.FromSeconds(4.9));
        blocked.IsCompleted.Should().BeFalse();
        _clock.Advance(TimeSpan.FromSeconds(0.1));

        QueueFullException error = (await FluentActions.Awaiting(() => blocked).Should().ThrowAsync<QueueFullException>()).Which;
        error.Queue.Should().Be("timeout");
        error.Message.Should().Contain("publish timeout").And.Contain("nothing was published");
        QueueSnapshot queue = _broker.GetSnapshot().Queue("timeout");
        queue.Published.Should().Be(3);
        queue.Depth.Should().Be(3);
        queue.WaitingPublishers.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_PerPublishTimeout_OverridesTheQueueDefault()
    {
        await FullQueueAsync("override", OverflowPolicy.Wait, timeout: TimeSpan.FromMinutes(10));

        Task<PublishReceipt> blocked = _broker.PublishAsync("override", "e", new TestEvent(3), new PublishOptions { Timeout = TimeSpan.FromSeconds(1) }).AsTask();
        _clock.Advance(TimeSpan.FromSeconds(1));

        await FluentActions.Awaiting(() => blocked).Should().ThrowAsync<QueueFullException>();
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_WaitingPublisherCancelled_ThrowsCanceledAndTheNextWaiterGetsTheRoom()
    {
        Subscription<TestEvent> subscription = await FullQueueAsync("cancel", OverflowPolicy.Wait);
        using var cancellation = new CancellationTokenSource();
        Task<PublishReceipt> cancelled = _broker.PublishAsync("cancel", "e", new TestEvent(100), cancellationToken: cancellation.Token).AsTask();
        Task<PublishReceipt> next = _broker.PublishAsync("cancel", "e", new TestEvent(3)).AsTask();

        await cancellation.CancelAsync();
        await FluentActions.Awaiting(() => cancelled).Should().ThrowAsync<OperationCanceledException>();

        await (await subscription.ReadAsync()).AckAsync();
        (await next.OrHang("the second waiter")).Sequence.Should().Be(4, "the cancelled publish took no sequence");

        var numbers = new List<int>();
        for (int i = 0; i < 3; i++)
        {
            Delivery<TestEvent> delivery = await subscription.ReadAsync().OrHang("delivery");
            numbers.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        numbers.Should().Equal(1, 2, 3);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task TryPublish_WaitPolicyFullQueue_ReturnsFalseWithoutWaitingOrEnqueueing()
    {
        await FullQueueAsync("try", OverflowPolicy.Wait);

        _broker.TryPublish("try", "e", new TestEvent(3), out PublishReceipt receipt).Should().BeFalse();

        receipt.Should().Be(default(PublishReceipt));
        _broker.GetSnapshot().Queue("try").Published.Should().Be(3);
    }

    // ------------------------------------------------------------------ Reject

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_RejectPolicyFullQueue_ThrowsAtOnceAndBrokerKeepsWorking()
    {
        Subscription<TestEvent> subscription = await FullQueueAsync("reject", OverflowPolicy.Reject);

        QueueFullException error = (await FluentActions.Awaiting(async () => await _broker.PublishAsync("reject", "e", new TestEvent(3)))
            .Should().ThrowAsync<QueueFullException>()).Which;
        error.Queue.Should().Be("reject");
        error.Message.Should().Contain("MaxMessages = 3").And.Contain("Reject").And.Contain("nothing was published");
        _broker.TryPublish("reject", "e", new TestEvent(3), out _).Should().BeFalse();

        await (await subscription.ReadAsync()).AckAsync();
        (await _broker.PublishAsync("reject", "e", new TestEvent(4))).Sequence.Should().Be(4);
    }

    // ------------------------------------------------------------------ DropOldest

    [Fact]
    [Trait("Guarantee", "1")]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_DropOldestFullQueue_DropsOldestWaitingCountsAndRaisesIt()
    {
        var dropped = new List<MessageDroppedEventArgs>();
        _broker.MessageDropped += (_, e) => dropped.Add(e);
        Subscription<TestEvent> subscription = await FullQueueAsync("drop", OverflowPolicy.DropOldest);

        // Message 0 is in flight (MaxInFlight = 1); 1 and 2 wait in the backlog.
        PublishReceipt receipt = await _broker.PublishAsync("drop", "e", new TestEvent(3));
        receipt.Sequence.Should().Be(4);

        MessageDroppedEventArgs drop = dropped.Should().ContainSingle().Subject;
        drop.Queue.Should().Be("drop");
        drop.Subscription.Should().Be("only");
        drop.Sequence.Should().Be(2, "sequence 1 is in flight, so the oldest waiting message is sequence 2");
        drop.Reason.Should().Be(DropReason.QueueOverflow);

        QueueSnapshot queue = _broker.GetSnapshot().Queue("drop");
        queue.Dropped.Should().Be(1);
        queue.Depth.Should().Be(3);
        queue.Subscription("only").Dropped.Should().Be(1);

        var numbers = new List<int>();
        for (int i = 0; i < 3; i++)
        {
            Delivery<TestEvent> delivery = await subscription.ReadAsync().OrHang("delivery");
            numbers.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        numbers.Should().Equal([0, 2, 3], "message 1 was dropped and nothing else was lost");
        _broker.GetSnapshot().Queue("drop").Depth.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_DropOldestWithEverythingInFlight_AdmitsOverTheBoundByAtMostInFlight()
    {
        _broker.DeclareQueue<TestEvent>("inflight", new QueueOptions { MaxMessages = 2, Overflow = OverflowPolicy.DropOldest });
        Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("inflight", "#", new SubscriptionOptions { MaxInFlight = 2 });
        await _broker.PublishAsync("inflight", "e", new TestEvent(0));
        await _broker.PublishAsync("inflight", "e", new TestEvent(1));
        var dropped = 0;
        _broker.MessageDropped += (_, _) => dropped++;

        await _broker.PublishAsync("inflight", "e", new TestEvent(2));
        await _broker.PublishAsync("inflight", "e", new TestEvent(3));

        // 0 and 1 are in flight and never dropped; 2 was the oldest waiting when 3 arrived.
        dropped.Should().Be(1);
        _broker.GetSnapshot().Queue("inflight").Depth.Should().Be(3, "2 in flight (the consumer's MaxInFlight) plus 1 waiting");
        var numbers = new List<int>();
        for (int i = 0; i < 3; i++)
        {
            Delivery<TestEvent> delivery = await subscription.ReadAsync().OrHang("delivery");
            numbers.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        numbers.Should().Equal(0, 1, 3);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task PublishAsync_DropOldestFanOut_DropsFromEveryBacklogButNotFromInFlightCopies()
    {
        _broker.DeclareQueue<TestEvent>("fan", new QueueOptions { MaxMessages = 2, Overflow = OverflowPolicy.DropOldest });
        Subscription<TestEvent> fast = await _broker.SubscribeAsync<TestEvent>("fan", "#", new SubscriptionOptions { Name = "fast", MaxInFlight = 10 });
        Subscription<TestEvent> slow = await _broker.SubscribeAsync<TestEvent>("fan", "#", new SubscriptionOptions { Name = "slow", MaxInFlight = 1 });
        var dropped = new List<MessageDroppedEventArgs>();
        _broker.MessageDropped += (_, e) => dropped.Add(e);

        await _broker.PublishAsync("fan", "e", new TestEvent(0));
        await _broker.PublishAsync("fan", "e", new TestEvent(1));
        await _broker.PublishAsync("fan", "e", new TestEvent(2));

        // "fast" had message 1 in flight; only "slow" had it waiting, so only "slow" lost it.
        dropped.Select(d => (d.Subscription, d.Sequence)).Should().Equal(("slow", 2L));
        List<int> fastNumbers = [];
        for (int i = 0; i < 3; i++)
        {
            Delivery<TestEvent> delivery = await fast.ReadAsync().OrHang("fast delivery");
            fastNumbers.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        fastNumbers.Should().Equal(0, 1, 2);
        List<int> slowNumbers = [];
        for (int i = 0; i < 2; i++)
        {
            Delivery<TestEvent> delivery = await slow.ReadAsync().OrHang("slow delivery");
            slowNumbers.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        slowNumbers.Should().Equal(0, 2);
        QueueSnapshot queue = _broker.GetSnapshot().Queue("fan");
        queue.Depth.Should().Be(0, "every message was settled or dropped everywhere, and each freed its depth exactly once");
        queue.Subscription("slow").Dropped.Should().Be(1);
        queue.Subscription("fast").Dropped.Should().Be(0);
    }

    // ------------------------------------------------------------------ retention

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task Depth_InterestRetention_MessageCountsUntilEverySubscriptionSettlesIt()
    {
        Subscription<TestEvent> a = await _broker.SubscribeAsync<TestEvent>("interest", "#");
        Subscription<TestEvent> b = await _broker.SubscribeAsync<TestEvent>("interest", "#");
        await _broker.PublishAsync("interest", "e", new TestEvent(1));

        await (await a.ReadAsync()).AckAsync();
        _broker.GetSnapshot().Queue("interest").Depth.Should().Be(1, "subscription b has not settled it yet");

        await (await b.ReadAsync()).AckAsync();
        _broker.GetSnapshot().Queue("interest").Depth.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task PublishAsync_NoMatchingSubscription_IsCountedAsUnroutedAndTakesNoRoom()
    {
        _broker.DeclareQueue<TestEvent>("void", new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.Reject });
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("void", "add");

        for (int i = 0; i < 5; i++)
        {
            await _broker.PublishAsync("void", "delete", new TestEvent(i));
        }

        QueueSnapshot queue = _broker.GetSnapshot().Queue("void");
        queue.Unrouted.Should().Be(5);
        queue.Published.Should().Be(5);
        queue.Depth.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task DeadLetterQueue_MoreRejectionsThanItsBound_KeepsTheNewestAndCountsDrops()
    {
        _broker.DeclareQueue<TestEvent>("rejects", new QueueOptions { MaxMessages = 2 });
        var dropped = new List<MessageDroppedEventArgs>();
        _broker.MessageDropped += (_, e) => dropped.Add(e);
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("rejects", "#");
        for (int i = 0; i < 3; i++)
        {
            await _broker.PublishAsync("rejects", "e", new TestEvent(i));
            await (await subscription.ReadAsync()).RejectAsync("bad");
        }

        QueueSnapshot dlq = _broker.GetSnapshot().Queue("rejects.$dlq");
        dlq.IsDeadLetterQueue.Should().BeTrue();
        dlq.Depth.Should().Be(2);
        dlq.Dropped.Should().Be(1);
        dropped.Should().ContainSingle().Which.Should().Match<MessageDroppedEventArgs>(e => e.Queue == "rejects.$dlq" && e.Subscription == null && e.Sequence == 1);
        _broker.GetSnapshot().Queue("rejects").DeadLettered.Should().Be(3);
    }

    // ------------------------------------------------------------------ regressions found in review

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task DropOldest_MessageEvictedTwice_FreesItsDepthOnlyOnce()
    {
        // Message 1 is evicted while in flight with "fast"; "fast" then detaches, so message 1 waits
        // again and is evicted a second time. The depth must not be freed twice.
        _broker.DeclareQueue<TestEvent>("twice", new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.DropOldest });
        await (await _broker.SubscribeAsync<TestEvent>("twice", "#", new SubscriptionOptions { Name = "idle" })).DisposeAsync();
        Subscription<TestEvent> fast = await _broker.SubscribeAsync<TestEvent>("twice", "#", new SubscriptionOptions { Name = "fast", MaxInFlight = 1 });

        await _broker.PublishAsync("twice", "e", new TestEvent(1)); // idle: waiting; fast: in flight
        await _broker.PublishAsync("twice", "e", new TestEvent(2)); // evicts 1 from idle; it stops counting
        await fast.DisposeAsync();                                   // 1 comes back to fast's backlog
        await _broker.PublishAsync("twice", "e", new TestEvent(3)); // evicts 1 again (frees nothing), then 2

        QueueSnapshot queue = _broker.GetSnapshot().Queue("twice");
        queue.Depth.Should().Be(1, "only message 3 is retained");
        (queue.Subscription("idle").Backlog, queue.Subscription("fast").Backlog).Should().Be((1, 1));

        await using Subscription<TestEvent> idle = await _broker.SubscribeAsync<TestEvent>("twice", "#", new SubscriptionOptions { Name = "idle" });
        await using Subscription<TestEvent> fastAgain = await _broker.SubscribeAsync<TestEvent>("twice", "#", new SubscriptionOptions { Name = "fast" });
        Delivery<TestEvent> a = await idle.ReadAsync();
        Delivery<TestEvent> b = await fastAgain.ReadAsync();
        (a.Payload.Number, b.Payload.Number).Should().Be((3, 3));
        await a.AckAsync();
        await b.AckAsync();
        _broker.GetSnapshot().Queue("twice").Depth.Should().Be(0, "every unit of depth was freed exactly once");
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_ManyCancelledWaiters_LeaveTheLineAtOnce()
    {
        Subscription<TestEvent> subscription = await FullQueueAsync("line", OverflowPolicy.Wait);
        for (int i = 0; i < 1000; i++)
        {
            using var cancellation = new CancellationTokenSource();
            Task<PublishReceipt> waiting = _broker.PublishAsync("line", "e", new TestEvent(100 + i), cancellationToken: cancellation.Token).AsTask();
            await cancellation.CancelAsync();
            await FluentActions.Awaiting(() => waiting).Should().ThrowAsync<OperationCanceledException>();
        }

        _broker.GetSnapshot().Queue("line").WaitingPublishers.Should().Be(0, "a cancelled publisher leaves the line");

        await (await subscription.ReadAsync()).AckAsync();
        _broker.TryPublish("line", "e", new TestEvent(3), out PublishReceipt receipt).Should().BeTrue("nobody is waiting ahead of a new publisher");
        receipt.Sequence.Should().Be(4);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task PublishAsync_WaitersGrantedWhilePublishersRace_DepthNeverExceedsTheBound()
    {
        _broker.DeclareQueue<TestEvent>("race", new QueueOptions { MaxMessages = 2, PublishTimeout = TestWait.HangGuard });
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("race", "#", new SubscriptionOptions { MaxInFlight = 1 });
        const int publishers = 4, each = 2000;
        int maxDepth = 0;
        Task consumer = Task.Run(async () =>
        {
            for (int i = 0; i < publishers * each; i++)
            {
                Delivery<TestEvent> delivery = await subscription.ReadAsync();
                maxDepth = Math.Max(maxDepth, _broker.GetSnapshot().Queue("race").Depth);
                await delivery.AckAsync();
            }
        });

        await Task.WhenAll(Enumerable.Range(0, publishers).Select(p => Task.Run(async () =>
        {
            for (int i = 0; i < each; i++)
            {
                await _broker.PublishAsync("race", "e", new TestEvent(i));
            }
        }))).OrHang("the publishers");
        await consumer.OrHang("the consumer");

        maxDepth.Should().BeLessThanOrEqualTo(2, "a granted waiter takes its room before any fast-path publisher can");
        _broker.GetSnapshot().Queue("race").Depth.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task DeadLetterQueue_DurableSubscriberThatLeftWithAnEvictedMessage_StaysWithinTheBound()
    {
        _broker.DeclareQueue<TestEvent>("src", new QueueOptions { MaxMessages = 3 });
        await using Subscription<TestEvent> source = await _broker.SubscribeAsync<TestEvent>("src", "#", new SubscriptionOptions { MaxInFlight = 1 });
        Subscription<TestEvent> triage = await _broker.SubscribeAsync<TestEvent>("src.$dlq", "#", new SubscriptionOptions { Name = "triage", MaxInFlight = 1 });

        async Task RejectOneAsync(int number)
        {
            await _broker.PublishAsync("src", "e", new TestEvent(number));
            await (await source.ReadAsync().OrHang("a source delivery")).RejectAsync("bad");
        }

        await RejectOneAsync(1);
        Delivery<TestEvent> held = await triage.ReadAsync();
        for (int i = 2; i <= 4; i++)
        {
            await RejectOneAsync(i); // the 4th evicts dead letter 1 from the log while triage holds it
        }

        await triage.DisposeAsync(); // dead letter 1 comes back to triage's backlog, older than the log
        (await held.AckAsync()).Should().BeFalse();
        for (int i = 5; i <= 200; i++)
        {
            await RejectOneAsync(i);
        }

        QueueSnapshot dlq = _broker.GetSnapshot().Queue("src.$dlq");
        dlq.Depth.Should().Be(3);
        dlq.Subscription("triage").Backlog.Should().BeLessThanOrEqualTo(3, "the subscription keeps no more than the log it reads from");
    }
}
