using System.Globalization;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.Queues;

/// <summary>
/// <see cref="QueueOptions.DeadLetterDrops"/>: what a subscription loses for lack of room also goes to the
/// dead-letter queue, with the reason <see cref="DeadLetterReasons.Overflow"/> and its delivery history.
/// </summary>
public sealed class OverflowDeadLetterTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 11, 21, 9, 0, 0, TimeSpan.Zero);
    private readonly ManualTimeProvider _clock = new(Start);
    private readonly List<MessageDroppedEventArgs> _dropped = [];
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        // No shutdown wait: it runs on the manual clock, which nothing moves once a test ends, so a dispose that waited
        // for a delivery a failed test read and never settled would never time out, and the failure would be a hang.
        _broker = new Broker(new BrokerOptions { TimeProvider = _clock, ShutdownTimeout = TimeSpan.Zero });
        _broker.MessageDropped += (_, e) => _dropped.Add(e);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    /// <summary>Reads every dead letter <paramref name="queue"/> holds, oldest first, and acks them.</summary>
    private async Task<List<Delivery<TestEvent>>> DeadLettersAsync(string queue)
    {
        int count = checked((int)_broker.GetSnapshot().Queue(queue + ".$dlq").Depth);
        await using Subscription<TestEvent> reader = await _broker.SubscribeAsync<TestEvent>(
            queue + ".$dlq", "#", new SubscriptionOptions { StartAt = StartPosition.All, MaxInFlight = Math.Max(1, count) });
        var deadLetters = new List<Delivery<TestEvent>>();
        for (int i = 0; i < count; i++)
        {
            Delivery<TestEvent> deadLetter = await reader.ReadAsync().OrHang($"dead letter {i}");
            deadLetters.Add(deadLetter);
            await deadLetter.AckAsync();
        }

        reader.TryRead(out _).Should().BeFalse("the dead-letter queue held exactly what its depth said");
        return deadLetters;
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task DropOldest_WithDeadLetterDrops_DropsFromTheBacklogAndKeepsACopyInTheDeadLetterQueue()
    {
        _broker.DeclareQueue<TestEvent>("fan", new QueueOptions { MaxMessages = 2, Overflow = OverflowPolicy.DropOldest, DeadLetterDrops = true });
        await using Subscription<TestEvent> fast = await _broker.SubscribeAsync<TestEvent>("fan", "#", new SubscriptionOptions { Name = "fast", MaxInFlight = 10 });
        await using Subscription<TestEvent> slow = await _broker.SubscribeAsync<TestEvent>("fan", "#", new SubscriptionOptions { Name = "slow", MaxInFlight = 1 });

        for (int i = 0; i < 3; i++)
        {
            await _broker.PublishAsync("fan", "e", new TestEvent(i));
        }

        // "slow" holds 0 in flight and had 1 waiting, the oldest waiting message when 2 arrived.
        _dropped.Select(d => (d.Subscription, d.Sequence, d.Reason)).Should().Equal(("slow", 2L, DropReason.QueueOverflow));
        Delivery<TestEvent> deadLetter = (await DeadLettersAsync("fan")).Should().ContainSingle().Subject;
        deadLetter.Payload.Number.Should().Be(1);
        deadLetter.Message.Headers.Should().Contain(new Dictionary<string, string>
        {
            [MessageHeaders.DeadLetterReason] = DeadLetterReasons.Overflow,
            [MessageHeaders.SourceQueue] = "fan",
            [MessageHeaders.SourceSequence] = "2",
            [MessageHeaders.SourceSubscription] = "slow",
            [MessageHeaders.Attempts] = "0",
        });
        deadLetter.Message.Headers.Should().NotContainKey(MessageHeaders.FirstDeliveredAt, "it was never delivered to \"slow\"");

        QueueSnapshot queue = _broker.GetSnapshot().Queue("fan");
        (queue.Dropped, queue.DeadLettered, queue.Subscription("slow").Dropped).Should().Be((1, 1, 1), "the drop is still counted and raised");
    }

    [Fact]
    [Trait("Guarantee", "1")]
    [Trait("Guarantee", "6")]
    public async Task DropOldest_DroppedMessageThatWasDeliveredBefore_CarriesItsHistory_AndReplaysAsNew()
    {
        _broker.DeclareQueue<TestEvent>("jobs", new QueueOptions { MaxMessages = 2, Overflow = OverflowPolicy.DropOldest, DeadLetterDrops = true });
        var options = new SubscriptionOptions { Name = "worker", MaxInFlight = 1 };
        Subscription<TestEvent> first = await _broker.SubscribeAsync<TestEvent>("jobs", "#", options);
        await _broker.PublishAsync("jobs", "e", new TestEvent(0));
        (await first.ReadAsync().OrHang("the first delivery")).Attempt.Should().Be(1);
        DateTimeOffset deliveredAt = _clock.GetUtcNow();

        // The consumer leaves holding 0, which goes back to wait for the next one; then the queue overflows.
        await first.DisposeAsync();
        _clock.Advance(TimeSpan.FromSeconds(5));
        await _broker.PublishAsync("jobs", "e", new TestEvent(1));
        await _broker.PublishAsync("jobs", "e", new TestEvent(2));

        Delivery<TestEvent> deadLetter = (await DeadLettersAsync("jobs")).Should().ContainSingle().Subject;
        deadLetter.Payload.Number.Should().Be(0);
        deadLetter.Message.Headers[MessageHeaders.DeadLetterReason].Should().Be(DeadLetterReasons.Overflow);
        deadLetter.Message.Headers[MessageHeaders.Attempts].Should().Be("1");
        DateTimeOffset.Parse(deadLetter.Message.Headers[MessageHeaders.FirstDeliveredAt], CultureInfo.InvariantCulture).Should().Be(deliveredAt);
        DateTimeOffset.Parse(deadLetter.Message.Headers[MessageHeaders.LastDeliveredAt], CultureInfo.InvariantCulture).Should().Be(deliveredAt);

        await using Subscription<TestEvent> second = await _broker.SubscribeAsync<TestEvent>("jobs", "#", options);
        var numbers = new List<int>();
        for (int i = 0; i < 2; i++)
        {
            Delivery<TestEvent> delivery = await second.ReadAsync().OrHang("a delivery");
            numbers.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        (await _broker.ReplayDeadLettersAsync("jobs")).Should().Be(1);
        Delivery<TestEvent> replayed = await second.ReadAsync().OrHang("the replayed message");
        numbers.Add(replayed.Payload.Number);
        replayed.Attempt.Should().Be(1, "a replayed message starts over");
        await replayed.AckAsync();

        numbers.Should().Equal(1, 2, 0);
        QueueSnapshot snapshot = _broker.GetSnapshot().Queue("jobs");
        (snapshot.Depth, _broker.GetSnapshot().Queue("jobs.$dlq").Depth).Should().Be((0, 0));
    }

    [Fact]
    [Trait("Guarantee", "1")]
    [Trait("Guarantee", "4")]
    public async Task MaxBacklogDropOldest_WithDeadLetterDrops_DeadLettersEveryDropInOrder()
    {
        _broker.DeclareQueue<TestEvent>("feed", new QueueOptions { DeadLetterDrops = true });
        await using Subscription<TestEvent> slow = await _broker.SubscribeAsync<TestEvent>("feed", "#", new SubscriptionOptions { Name = "slow", MaxInFlight = 1, MaxBacklog = 3 });
        await using Subscription<TestEvent> fast = await _broker.SubscribeAsync<TestEvent>("feed", "#", new SubscriptionOptions { Name = "fast" });
        for (int i = 0; i < 10; i++)
        {
            await _broker.PublishAsync("feed", "e", new TestEvent(i));
        }

        List<Delivery<TestEvent>> deadLetters = await DeadLettersAsync("feed");
        deadLetters.Select(d => d.Payload.Number).Should().Equal([1, 2, 3, 4, 5, 6], "0 was in flight and 7 to 9 fit the bound of three");
        deadLetters.Should().OnlyContain(d =>
            d.Message.Headers[MessageHeaders.DeadLetterReason] == DeadLetterReasons.Overflow
            && d.Message.Headers[MessageHeaders.SourceSubscription] == "slow");
        _dropped.Should().HaveCount(6).And.OnlyContain(d => d.Reason == DropReason.SubscriptionOverflow);

        var fastGot = new List<int>();
        while (fast.TryRead(out Delivery<TestEvent> delivery))
        {
            fastGot.Add(delivery.Payload.Number);
            await delivery.AckAsync();
        }

        fastGot.Should().Equal(Enumerable.Range(0, 10), "only the slow subscription lost anything");
        QueueSnapshot queue = _broker.GetSnapshot().Queue("feed");
        (queue.Subscription("slow").Dropped, queue.DeadLettered).Should().Be((6, 6));
    }

    [Fact]
    [Trait("Guarantee", "1")]
    [Trait("Guarantee", "4")]
    public async Task MaxBacklogDisconnect_WithDeadLetterDrops_DeadLettersWhatTheCutLooseSubscriptionHeld()
    {
        _broker.DeclareQueue<TestEvent>("feed", new QueueOptions { DeadLetterDrops = true });
        Subscription<TestEvent> slow = await _broker.SubscribeAsync<TestEvent>("feed", "#", new SubscriptionOptions { Name = "slow", MaxInFlight = 1, MaxBacklog = 2, BacklogOverflow = BacklogOverflowPolicy.Disconnect });
        await _broker.PublishAsync("feed", "e", new TestEvent(0));
        Delivery<TestEvent> held = await slow.ReadAsync().OrHang("the slow subscription's one delivery");
        for (int i = 1; i <= 3; i++)
        {
            await _broker.PublishAsync("feed", "e", new TestEvent(i));
        }

        (await FluentActions.Awaiting(() => slow.Completion).Should().ThrowAsync<SubscriptionClosedException>()).Which.Reason.Should().Be(SubscriptionCloseReason.CutLoose);
        (await held.AckAsync()).Should().BeFalse("its subscription was cut loose and the message dead-lettered");

        List<Delivery<TestEvent>> deadLetters = await DeadLettersAsync("feed");
        deadLetters.Select(d => (d.Payload.Number, d.Message.Headers[MessageHeaders.Attempts])).Should().BeEquivalentTo(
            [(0, "1"), (1, "0"), (2, "0"), (3, "0")],
            "the one it had read was delivered once; the rest only waited");
        deadLetters.Should().OnlyContain(d => d.Message.Headers[MessageHeaders.DeadLetterReason] == DeadLetterReasons.Overflow);
        _dropped.Should().HaveCount(4).And.OnlyContain(d => d.Reason == DropReason.SubscriptionOverflow);
        _broker.GetSnapshot().Queue("feed").Depth.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task LimitsRetention_WithDeadLetterDrops_EvictionsAreRetentionNotOverflow_AndAreNotDeadLettered()
    {
        _broker.DeclareQueue<TestEvent>("log", new QueueOptions { Retention = RetentionPolicy.Limits, MaxMessages = 2, Overflow = OverflowPolicy.DropOldest, DeadLetterDrops = true });
        await using Subscription<TestEvent> reader = await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { Name = "reader", MaxInFlight = 1 });
        for (int i = 0; i < 5; i++)
        {
            await _broker.PublishAsync("log", "e", new TestEvent(i));
        }

        _dropped.Should().NotBeEmpty().And.OnlyContain(d => d.Reason == DropReason.RetentionLimit);
        QueueSnapshot queue = _broker.GetSnapshot().Queue("log");
        (queue.DeadLettered, _broker.GetSnapshot().Queue("log.$dlq").Depth).Should().Be((0, 0));
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task DelayedMessageDueIntoAFullRejectLog_WithDeadLetterDrops_IsDeadLetteredAsOverflow()
    {
        _broker.DeclareQueue<TestEvent>("log", new QueueOptions { Retention = RetentionPolicy.Limits, MaxMessages = 1, Overflow = OverflowPolicy.Reject, DeadLetterDrops = true });
        await _broker.PublishAsync("log", "now", new TestEvent(0));
        PublishReceipt later = await _broker.PublishAsync("log", "later", new TestEvent(1), new PublishOptions { DeliverAfter = TimeSpan.FromSeconds(1) });

        _clock.Advance(TimeSpan.FromSeconds(1));

        _dropped.Select(d => (d.MessageId, d.Reason)).Should().Equal((later.MessageId, DropReason.QueueOverflow));
        Delivery<TestEvent> deadLetter = (await DeadLettersAsync("log")).Should().ContainSingle().Subject;
        (deadLetter.Event, deadLetter.Message.Id, deadLetter.Message.Headers[MessageHeaders.DeadLetterReason])
            .Should().Be(("later", later.MessageId, DeadLetterReasons.Overflow));
    }

    [Fact]
    public async Task DeadLetterDropsOff_ByDefault_DropsLeaveNoDeadLetter()
    {
        _broker.DeclareQueue<TestEvent>("plain", new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.DropOldest });
        await using Subscription<TestEvent> slow = await _broker.SubscribeAsync<TestEvent>("plain", "#", new SubscriptionOptions { MaxInFlight = 1 });
        for (int i = 0; i < 4; i++)
        {
            await _broker.PublishAsync("plain", "e", new TestEvent(i));
        }

        _dropped.Should().HaveCount(2, "0 is in flight; 1 and 2 were each the oldest waiting when the next arrived");
        (_broker.GetSnapshot().Queue("plain").DeadLettered, _broker.GetSnapshot().Queue("plain.$dlq").Depth).Should().Be((0, 0));
    }
}
