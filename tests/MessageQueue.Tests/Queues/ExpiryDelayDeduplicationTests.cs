using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.Queues;

/// <summary>Time to live, delayed delivery and deduplication, on a manual clock.</summary>
public sealed class ExpiryDelayDeduplicationTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 11, 21, 9, 0, 0, TimeSpan.Zero);
    private readonly ManualTimeProvider _clock = new(Start);
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        _broker = new Broker(new BrokerOptions { TimeProvider = _clock, ShutdownTimeout = TimeSpan.Zero });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private Task<PublishReceipt> PublishAsync(string queue, int number, PublishOptions options = default) =>
        _broker.PublishAsync(queue, "e", new TestEvent(number), options).AsTask();

    // ------------------------------------------------------------------ time to live

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task TimeToLive_RunsOutBeforeTheMessageIsRead_NeverDeliveredAndDeadLetteredAsExpired()
    {
        await using Subscription<TestEvent> dlq = await _broker.SubscribeAsync<TestEvent>("ttl.$dlq", "#");
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("ttl", "#", new SubscriptionOptions { Name = "c" });
        await PublishAsync("ttl", 1, new PublishOptions { TimeToLive = TimeSpan.FromSeconds(10) });
        await PublishAsync("ttl", 2);

        _clock.Advance(TimeSpan.FromSeconds(10));

        consumer.TryRead(out Delivery<TestEvent> delivery).Should().BeTrue();
        delivery.Payload.Number.Should().Be(2, "message 1 expired on its way to the reader");
        await delivery.AckAsync();
        Delivery<TestEvent> dead = await dlq.ReadAsync().OrHang("the expired message's dead letter");
        dead.Payload.Number.Should().Be(1);
        dead.Message.Headers.Should().Contain(MessageHeaders.DeadLetterReason, DeadLetterReasons.Expired).And.Contain(MessageHeaders.Attempts, "0");
        dead.Message.ExpiresAt.Should().BeNull("a dead letter does not expire in the dead-letter queue");
        QueueSnapshot queue = _broker.GetSnapshot().Queue("ttl");
        (queue.Subscription("c").Expired, queue.Depth).Should().Be((1, 0));
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task TimeToLive_ReadInTime_IsDeliveredWithItsExpiry()
    {
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("ttl", "#");
        await PublishAsync("ttl", 1, new PublishOptions { TimeToLive = TimeSpan.FromSeconds(10) });
        await PublishAsync("ttl", 2);
        _clock.Advance(TimeSpan.FromSeconds(9.999));

        Delivery<TestEvent> delivery = await consumer.ReadAsync();
        (delivery.Payload.Number, delivery.Message.ExpiresAt).Should().Be((1, Start.AddSeconds(10)));
        (await consumer.ReadAsync()).Message.ExpiresAt.Should().BeNull("message 2 has no time to live");
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task TimeToLive_QueueDefault_AppliesUnlessThePublishGivesItsOwn()
    {
        _broker.DeclareQueue<TestEvent>("short", new QueueOptions { TimeToLive = TimeSpan.FromSeconds(5) });
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("short", "#");
        await PublishAsync("short", 1);
        await PublishAsync("short", 2, new PublishOptions { TimeToLive = TimeSpan.FromMinutes(1) });

        _clock.Advance(TimeSpan.FromSeconds(5));

        (await consumer.ReadAsync()).Payload.Number.Should().Be(2);
        consumer.TryRead(out _).Should().BeFalse();
        _broker.GetSnapshot().Queue("short.$dlq").Depth.Should().Be(1);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task DeadLettersOff_ExpiredAndRejectedMessages_AreDroppedCountedAndRaised()
    {
        _broker.DeclareQueue<TestEvent>("plain", new QueueOptions { DeadLetters = false });
        var dropped = new List<MessageDroppedEventArgs>();
        _broker.MessageDropped += (_, e) => dropped.Add(e);
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("plain", "#", new SubscriptionOptions { Name = "c" });
        await PublishAsync("plain", 1, new PublishOptions { TimeToLive = TimeSpan.FromSeconds(1) });
        await PublishAsync("plain", 2);
        _clock.Advance(TimeSpan.FromSeconds(1));

        await (await consumer.ReadAsync()).RejectAsync("no");

        dropped.Select(d => (d.Sequence, d.Reason)).Should().Equal((1L, DropReason.Expired), (2L, DropReason.DeadLetterDiscarded));
        QueueSnapshot queue = _broker.GetSnapshot().Queue("plain");
        (queue.Dropped, queue.Depth).Should().Be((2, 0));
        _broker.GetSnapshot().Queues.Select(q => q.Name).Should().NotContain("plain.$dlq");
        await FluentActions.Awaiting(async () => await _broker.SubscribeAsync<TestEvent>("plain.$dlq", "#")).Should().ThrowAsync<QueueNotFoundException>().WithMessage("*DeadLetters off*");
        await FluentActions.Awaiting(async () => await _broker.ReplayDeadLettersAsync("plain")).Should().ThrowAsync<InvalidOperationException>().WithMessage("*no dead-letter queue*");
    }

    // ------------------------------------------------------------------ delayed delivery

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task DeliverAfter_HoldsTheMessageOutOfTheQueueUntilItIsDue()
    {
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("later", "#");
        PublishReceipt receipt = await PublishAsync("later", 1, new PublishOptions { DeliverAfter = TimeSpan.FromSeconds(30) });
        await PublishAsync("later", 2);

        (receipt.Sequence, receipt.MessageId == Guid.Empty).Should().Be((0, false));
        QueueSnapshot held = _broker.GetSnapshot().Queue("later");
        (held.Scheduled, held.Depth).Should().Be((1, 2), "a held message counts against the bound");
        (await consumer.ReadAsync()).Payload.Number.Should().Be(2);

        _clock.Advance(TimeSpan.FromSeconds(29));
        consumer.TryRead(out _).Should().BeFalse();
        _clock.Advance(TimeSpan.FromSeconds(1));

        Delivery<TestEvent> due = await consumer.ReadAsync();
        (due.Payload.Number, due.Message.Id, due.Message.Sequence, due.Message.Timestamp).Should().Be(
            (1, receipt.MessageId, 2L, Start.AddSeconds(30)), "it got the next sequence when it entered the queue, after message 2");
        _broker.GetSnapshot().Queue("later").Scheduled.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task NotBefore_InTheFutureHoldsAndInThePastPublishesAtOnce()
    {
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("later", "#");
        PublishReceipt past = await PublishAsync("later", 1, new PublishOptions { NotBefore = Start.AddMinutes(-1) });
        await PublishAsync("later", 2, new PublishOptions { NotBefore = Start.AddMinutes(1) });
        await PublishAsync("later", 3, new PublishOptions { NotBefore = Start.AddMinutes(1) });
        await PublishAsync("later", 4, new PublishOptions { NotBefore = Start.AddSeconds(30) });

        past.Sequence.Should().Be(1);
        (await consumer.ReadAsync()).Payload.Number.Should().Be(1);
        _clock.Advance(TimeSpan.FromMinutes(1));

        var numbers = new List<int>();
        while (consumer.TryRead(out Delivery<TestEvent> delivery))
        {
            numbers.Add(delivery.Payload.Number);
        }

        numbers.Should().Equal([4, 2, 3], "held messages enter in due order, and in publish order when due together");
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task DeliverAfter_SubscriptionMadeWhileTheMessageWaits_ReceivesIt()
    {
        await PublishAsync("later", 1, new PublishOptions { DeliverAfter = TimeSpan.FromSeconds(5) });
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("later", "#");

        _clock.Advance(TimeSpan.FromSeconds(5));

        (await consumer.ReadAsync()).Payload.Number.Should().Be(1, "a held message is routed when it enters the queue");
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task DeliverAfter_HeldMessage_CountsAgainstTheBound()
    {
        _broker.DeclareQueue<TestEvent>("tight", new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.Reject });
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("tight", "#");
        await PublishAsync("tight", 1, new PublishOptions { DeliverAfter = TimeSpan.FromSeconds(5) });

        await FluentActions.Awaiting(() => PublishAsync("tight", 2)).Should().ThrowAsync<QueueFullException>();
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_WithHeldMessages_CountsThemAsAbandoned()
    {
        await PublishAsync("later", 1, new PublishOptions { DeliverAfter = TimeSpan.FromSeconds(5) });

        await _broker.DisposeAsync();

        QueueSnapshot queue = _broker.GetSnapshot().Queue("later");
        (queue.Scheduled, queue.Abandoned, queue.Depth).Should().Be((0, 1L, 0));
    }

    // ------------------------------------------------------------------ deduplication

    [Fact]
    public async Task MessageId_PublishedTwiceWithinTheWindow_SecondReturnsTheFirstReceiptAndEnqueuesNothing()
    {
        _broker.DeclareQueue<TestEvent>("once", new QueueOptions { DeduplicationWindow = TimeSpan.FromMinutes(1) });
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("once", "#");
        var id = Guid.NewGuid();

        PublishReceipt first = await PublishAsync("once", 1, new PublishOptions { MessageId = id });
        PublishReceipt second = await PublishAsync("once", 2, new PublishOptions { MessageId = id });
        _broker.TryPublish("once", "e", new TestEvent(3), new PublishOptions { MessageId = id }, out PublishReceipt third).Should().BeTrue();

        second.Should().Be(first);
        third.Should().Be(first);
        Delivery<TestEvent> delivery = await consumer.ReadAsync();
        (delivery.Payload.Number, delivery.Message.Id).Should().Be((1, id));
        consumer.TryRead(out _).Should().BeFalse();
        _broker.GetSnapshot().Queue("once").Deduplicated.Should().Be(2);
    }

    [Fact]
    public async Task MessageId_AfterTheWindow_IsPublishedAgain()
    {
        _broker.DeclareQueue<TestEvent>("once", new QueueOptions { DeduplicationWindow = TimeSpan.FromMinutes(1) });
        var id = Guid.NewGuid();
        PublishReceipt first = await PublishAsync("once", 1, new PublishOptions { MessageId = id });

        _clock.Advance(TimeSpan.FromMinutes(1));
        PublishReceipt again = await PublishAsync("once", 2, new PublishOptions { MessageId = id });

        again.Sequence.Should().Be(first.Sequence + 1);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task MessageId_BeyondTheCapacity_TheOldestIdIsForgotten()
    {
        _broker.DeclareQueue<TestEvent>("once", new QueueOptions { DeduplicationWindow = TimeSpan.FromMinutes(1), DeduplicationCapacity = 2 });
        Guid a = Guid.NewGuid(), b = Guid.NewGuid(), c = Guid.NewGuid();
        await PublishAsync("once", 1, new PublishOptions { MessageId = a });
        await PublishAsync("once", 2, new PublishOptions { MessageId = b });
        await PublishAsync("once", 3, new PublishOptions { MessageId = c });

        (await PublishAsync("once", 4, new PublishOptions { MessageId = a })).Sequence.Should().Be(4, "a was forgotten to keep the window at two ids");
        (await PublishAsync("once", 5, new PublishOptions { MessageId = c })).Sequence.Should().Be(3, "c is still remembered");
    }

    [Fact]
    public async Task MessageId_WithoutAWindow_OnlySetsTheId()
    {
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("plain", "#");
        var id = Guid.NewGuid();

        await PublishAsync("plain", 1, new PublishOptions { MessageId = id });
        await PublishAsync("plain", 2, new PublishOptions { MessageId = id });

        (await consumer.ReadAsync()).Message.Id.Should().Be(id);
        (await consumer.ReadAsync()).Message.Id.Should().Be(id);
    }

    [Fact]
    public async Task MessageId_DuplicateArrivesWhileTheFirstWaitsForRoom_BothGetTheOneReceipt()
    {
        _broker.DeclareQueue<TestEvent>("busy", new QueueOptions { MaxMessages = 1, DeduplicationWindow = TimeSpan.FromMinutes(1) });
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("busy", "#");
        await PublishAsync("busy", 0);
        var id = Guid.NewGuid();

        Task<PublishReceipt> first = PublishAsync("busy", 1, new PublishOptions { MessageId = id });
        Task<PublishReceipt> duplicate = PublishAsync("busy", 2, new PublishOptions { MessageId = id });
        _broker.TryPublish("busy", "e", new TestEvent(3), new PublishOptions { MessageId = id }, out _).Should().BeFalse("the first publish of that id is still in progress");
        (first.IsCompleted, duplicate.IsCompleted).Should().Be((false, false));

        await (await consumer.ReadAsync()).AckAsync();

        PublishReceipt receipt = await first.OrHang("the first publish");
        (await duplicate.OrHang("the duplicate")).Should().Be(receipt);
        (await consumer.ReadAsync().OrHang("the one message")).Payload.Number.Should().Be(1);
        consumer.TryRead(out _).Should().BeFalse();
    }
}
