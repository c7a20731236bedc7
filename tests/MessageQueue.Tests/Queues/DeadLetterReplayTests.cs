using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests.Queues;

/// <summary>Subscribing to a dead-letter queue and moving dead letters back with <see cref="Broker.ReplayDeadLettersAsync"/>.</summary>
public sealed class DeadLetterReplayTests : IAsyncLifetime
{
    private Broker _broker = null!;
    private Subscription<TestEvent> _worker = null!;

    public async Task InitializeAsync()
    {
        // No shutdown wait: the worker is never disposed before the broker, so after a failed assertion a dispose that
        // waited for the delivery it still held would hold the failure back for the whole ShutdownTimeout.
        _broker = new Broker(new BrokerOptions { ShutdownTimeout = TimeSpan.Zero });
        _worker = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 1 });
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    /// <summary>Publishes each event and has the worker reject it; returns the receipts.</summary>
    private async Task<List<PublishReceipt>> DeadLetterAsync(params string[] events)
    {
        var receipts = new List<PublishReceipt>();
        foreach (string eventName in events)
        {
            receipts.Add(await _broker.PublishAsync("orders", eventName, new TestEvent(receipts.Count, eventName), new PublishOptions
            {
                Headers = new Dictionary<string, string> { ["tenant"] = "acme" },
            }));
            (await (await _worker.ReadAsync().OrHang("a delivery")).RejectAsync("bad")).Should().BeTrue();
        }

        return receipts;
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task ReplayDeadLettersAsync_All_MovesThemBackInOrderWithTheirIdsAndWithoutDeadLetterHeaders()
    {
        List<PublishReceipt> receipts = await DeadLetterAsync("a", "b", "c");
        _broker.GetSnapshot().Queue("orders.$dlq").Depth.Should().Be(3);

        (await _broker.ReplayDeadLettersAsync("orders")).Should().Be(3);

        var replayed = new List<Delivery<TestEvent>>();
        for (int i = 0; i < 3; i++)
        {
            Delivery<TestEvent> delivery = await _worker.ReadAsync().OrHang("a replayed message");
            replayed.Add(delivery);
            await delivery.AckAsync();
        }

        replayed.Select(d => d.Event).Should().Equal("a", "b", "c");
        replayed.Select(d => d.Message.Id).Should().Equal(receipts.Select(r => r.MessageId), "a replayed message keeps its id");
        replayed.Select(d => d.Message.Sequence).Should().OnlyContain(s => s > 3, "it is a new message in the queue");
        replayed[0].Message.Headers.Should().Equal(new Dictionary<string, string> { ["tenant"] = "acme", [MessageHeaders.ReplayCount] = "1" });
        QueueSnapshot dlq = _broker.GetSnapshot().Queue("orders.$dlq");
        (dlq.Depth, dlq.Replayed).Should().Be((0, 3));
        _broker.GetSnapshot().Queue("orders").Depth.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task ReplayDeadLettersAsync_FilterAndMaximum_MovesOnlyTheOldestMatchingOnes()
    {
        await DeadLetterAsync("a.x", "b.x", "a.y", "a.z");

        (await _broker.ReplayDeadLettersAsync("orders", new ReplayOptions { Filter = "a.*", MaxMessages = 2 })).Should().Be(2);

        var events = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            Delivery<TestEvent> delivery = await _worker.ReadAsync().OrHang("a replayed message");
            events.Add(delivery.Event);
            await delivery.AckAsync();
        }

        events.Should().Equal("a.x", "a.y");
        _worker.TryRead(out _).Should().BeFalse();
        _broker.GetSnapshot().Queue("orders.$dlq").Depth.Should().Be(2, "b.x and a.z stay dead letters");
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task ReplayDeadLettersAsync_ReplayedMessageFailsAgain_IsDeadLetteredAgainAndCanBeReplayedAgain()
    {
        await using Subscription<TestEvent> dlq = await _broker.SubscribeAsync<TestEvent>("orders.$dlq", "#");
        await DeadLetterAsync("a");
        (await dlq.ReadAsync().OrHang("the first dead letter")).Message.Headers.Should().NotContainKey(MessageHeaders.ReplayCount);

        (await _broker.ReplayDeadLettersAsync("orders")).Should().Be(1);
        (await (await _worker.ReadAsync().OrHang("the replay")).RejectAsync("still bad")).Should().BeTrue();

        Delivery<TestEvent> again = await dlq.ReadAsync().OrHang("the second dead letter");
        again.Message.Headers.Should().Contain(MessageHeaders.ReplayCount, "1").And.Contain(MessageHeaders.DeadLetterDetail, "still bad");
        (await _broker.ReplayDeadLettersAsync("orders")).Should().Be(1);
        Delivery<TestEvent> secondReplay = await _worker.ReadAsync().OrHang("the second replay");
        secondReplay.Message.Headers.Should().Contain(MessageHeaders.ReplayCount, "2");
        await secondReplay.AckAsync();
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task ReplayDeadLettersAsync_DeadLetterWaitingForADlqSubscriber_IsTakenOutOfItsBacklog()
    {
        Subscription<TestEvent> triage = await _broker.SubscribeAsync<TestEvent>("orders.$dlq", "#", new SubscriptionOptions { Name = "triage" });
        await triage.DisposeAsync();
        await DeadLetterAsync("a", "b");
        _broker.GetSnapshot().Queue("orders.$dlq").Subscription("triage").Backlog.Should().Be(2);

        (await _broker.ReplayDeadLettersAsync("orders", new ReplayOptions { Filter = "b" })).Should().Be(1);

        _broker.GetSnapshot().Queue("orders.$dlq").Subscription("triage").Backlog.Should().Be(1, "the replayed dead letter left the triage backlog too");
        await using Subscription<TestEvent> back = await _broker.SubscribeAsync<TestEvent>("orders.$dlq", "#", new SubscriptionOptions { Name = "triage" });
        (await back.ReadAsync().OrHang("the remaining dead letter")).Event.Should().Be("a");
        back.TryRead(out _).Should().BeFalse();
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task ReplayDeadLettersAsync_SourceQueueRejectsPartWay_MovesWhatFitsAndKeepsTheRest()
    {
        await using var broker = new Broker();
        broker.DeclareQueue<TestEvent>("tight", new QueueOptions { MaxMessages = 3, Overflow = OverflowPolicy.Reject });
        Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("tight", "#", new SubscriptionOptions { Name = "w", MaxInFlight = 1 });
        for (int i = 0; i < 3; i++)
        {
            await broker.PublishAsync("tight", "e", new TestEvent(i));
            await (await worker.ReadAsync()).RejectAsync();
        }

        await worker.DisposeAsync(); // nobody consumes: the queue fills up during the replay
        await broker.PublishAsync("tight", "e", new TestEvent(99)); // one of three places taken

        (await FluentActions.Awaiting(async () => await broker.ReplayDeadLettersAsync("tight")).Should().ThrowAsync<QueueFullException>())
            .WithMessage("Replay moved 2 dead letter(s) back into queue 'tight' and then found it full; the rest are still in 'tight.$dlq'*");

        BrokerSnapshot snapshot = broker.GetSnapshot();
        snapshot.Queue("tight").Depth.Should().Be(3);
        snapshot.Queue("tight.$dlq").Depth.Should().Be(1, "the dead letter that did not fit stays a dead letter");
        snapshot.Queue("tight.$dlq").Replayed.Should().Be(2);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task ReplayDeadLettersAsync_FanOut_GoesBackOnlyToTheSubscriptionThatDeadLetteredIt()
    {
        await using Subscription<TestEvent> audit = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "audit" });
        await DeadLetterAsync("a");
        await (await audit.ReadAsync().OrHang("audit's copy")).AckAsync();

        (await _broker.ReplayDeadLettersAsync("orders")).Should().Be(1);

        Delivery<TestEvent> replayed = await _worker.ReadAsync().OrHang("the replay");
        replayed.Event.Should().Be("a");
        await replayed.AckAsync();
        audit.TryRead(out _).Should().BeFalse("audit acked the message already; a replay must not hand it a duplicate");
        _broker.GetSnapshot().Queue("orders").Subscription("audit").Backlog.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task ReplayDeadLettersAsync_SourceSubscriptionGone_PublishesAnewToEveryMatchingSubscription()
    {
        await using var broker = new Broker();
        Subscription<TestEvent> ephemeral = await broker.SubscribeAsync<TestEvent>("jobs", "#");
        await broker.PublishAsync("jobs", "e", new TestEvent(1));
        await (await ephemeral.ReadAsync().OrHang("the delivery")).RejectAsync();
        await ephemeral.DisposeAsync();
        await using Subscription<TestEvent> later = await broker.SubscribeAsync<TestEvent>("jobs", "#", new SubscriptionOptions { Name = "later" });

        (await broker.ReplayDeadLettersAsync("jobs")).Should().Be(1);

        Delivery<TestEvent> replayed = await later.ReadAsync().OrHang("the replay, routed by its event");
        replayed.Payload.Number.Should().Be(1);
        await replayed.AckAsync();
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task ReplayDeadLettersAsync_ReplayedMessageRunsOutOfDeliveriesAgain_IsDeadLetteredAgainWithMaxDeliveries()
    {
        await using var broker = new Broker();
        await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("jobs", "#", new SubscriptionOptions
        {
            Name = "worker",
            MaxDeliveries = 2,
            RedeliveryDelays = [TimeSpan.Zero],
            Exclusive = ExclusiveMode.Reject,
        });
        await broker.PublishAsync("jobs", "e", new TestEvent(1));
        for (int round = 1; round <= 2; round++)
        {
            for (int attempt = 1; attempt <= 2; attempt++)
            {
                Delivery<TestEvent> delivery = await worker.ReadAsync().OrHang($"round {round}, attempt {attempt}");
                (delivery.Attempt, delivery.IsLastAttempt).Should().Be((attempt, attempt == 2), "a replayed message starts its attempts over");
                await delivery.NackAsync();
            }

            QueueSnapshot dlq = broker.GetSnapshot().Queue("jobs.$dlq");
            dlq.Depth.Should().Be(1, $"round {round} ended in the dead-letter queue");
            if (round == 1)
            {
                (await broker.ReplayDeadLettersAsync("jobs")).Should().Be(1);
            }
        }

        await using Subscription<TestEvent> reader = await broker.SubscribeAsync<TestEvent>("jobs.$dlq", "#", new SubscriptionOptions { StartAt = StartPosition.All });
        Delivery<TestEvent> deadLetter = await reader.ReadAsync().OrHang("the dead letter");
        deadLetter.Message.Headers.Should().Contain(MessageHeaders.DeadLetterReason, DeadLetterReasons.MaxDeliveries)
            .And.Contain(MessageHeaders.ReplayCount, "1")
            .And.Contain(MessageHeaders.Attempts, "2");
    }
}
