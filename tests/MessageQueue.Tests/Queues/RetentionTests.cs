using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.Queues;

/// <summary>Guarantee 5 in full: limits retention, start positions for new subscriptions, and gaps that are reported.</summary>
public sealed class RetentionTests : IAsyncLifetime
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

    private void DeclareLog(string queue, int maxMessages = 100, OverflowPolicy overflow = OverflowPolicy.DropOldest, TimeSpan? maxAge = null) =>
        _broker.DeclareQueue<TestEvent>(queue, new QueueOptions
        {
            Retention = RetentionPolicy.Limits,
            MaxMessages = maxMessages,
            Overflow = overflow,
            MaxAge = maxAge ?? Timeout.InfiniteTimeSpan,
        });

    private async Task PublishAsync(string queue, params int[] numbers)
    {
        foreach (int number in numbers)
        {
            await _broker.PublishAsync(queue, number % 2 == 0 ? "even" : "odd", new TestEvent(number));
            _clock.Advance(TimeSpan.FromSeconds(1));
        }
    }

    private static List<int> Drain(Subscription<TestEvent> subscription)
    {
        var numbers = new List<int>();
        while (subscription.TryRead(out Delivery<TestEvent> delivery))
        {
            numbers.Add(delivery.Payload.Number);
            delivery.AckAsync().AsTask().GetAwaiter().GetResult();
        }

        return numbers;
    }

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task StartAtAll_OnALimitsQueue_NewSubscriptionReadsEverythingRetainedEvenIfAckedElsewhere()
    {
        DeclareLog("log");
        await using Subscription<TestEvent> early = await _broker.SubscribeAsync<TestEvent>("log", "#");
        await PublishAsync("log", 1, 2, 3);
        Drain(early).Should().Equal(1, 2, 3);

        await using Subscription<TestEvent> late = await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { StartAt = StartPosition.All });
        await PublishAsync("log", 4);

        Drain(late).Should().Equal([1, 2, 3, 4], "acked messages stay in a Limits queue for later subscribers");
        _broker.GetSnapshot().Queue("log").Depth.Should().Be(4);
    }

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task StartPositions_FromSequenceAndFromTime_StartAtTheFirstRetainedMessageAtOrAfterThem()
    {
        DeclareLog("log");
        await PublishAsync("log", 1, 2, 3, 4, 5); // sequences 1..5 at 9:00:00..9:00:04

        await using Subscription<TestEvent> bySequence = await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { StartAt = StartPosition.FromSequence(3) });
        await using Subscription<TestEvent> byTime = await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { StartAt = StartPosition.FromTime(Start.AddSeconds(3.5)) });
        await using Subscription<TestEvent> filtered = await _broker.SubscribeAsync<TestEvent>("log", "odd", new SubscriptionOptions { StartAt = StartPosition.All });

        Drain(bySequence).Should().Equal(3, 4, 5);
        Drain(byTime).Should().Equal(5);
        Drain(filtered).Should().Equal([1, 3, 5], "a start position still applies the subscription's filters");
    }

    [Fact]
    [Trait("Guarantee", "5")]
    [Trait("Guarantee", "1")]
    public async Task DurableSubscriptionFallsBehindRetention_IsToldAboutTheGapAndItsNextDeliveryShowsTheJump()
    {
        DeclareLog("log", maxMessages: 3);
        var dropped = new List<MessageDroppedEventArgs>();
        _broker.MessageDropped += (_, e) => dropped.Add(e);
        await (await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { Name = "slow" })).DisposeAsync();

        await PublishAsync("log", 1, 2, 3, 4, 5);

        dropped.Select(d => (d.Subscription, d.Sequence, d.Reason)).Should().Equal(("slow", 1L, DropReason.RetentionLimit), ("slow", 2L, DropReason.RetentionLimit));
        _broker.GetSnapshot().Queue("log").Subscription("slow").Dropped.Should().Be(2);
        await using Subscription<TestEvent> back = await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { Name = "slow" });
        Delivery<TestEvent> next = await back.ReadAsync();
        next.Message.Sequence.Should().Be(3, "sequences 1 and 2 fell out of retention; the jump is visible");
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task LimitsQueueWithReject_Full_RefusesNewMessages()
    {
        DeclareLog("log", maxMessages: 2, overflow: OverflowPolicy.Reject);
        await PublishAsync("log", 1, 2);

        await FluentActions.Awaiting(() => PublishAsync("log", 3)).Should().ThrowAsync<QueueFullException>();
        _broker.GetSnapshot().Queue("log").Depth.Should().Be(2);
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task MaxAge_MessagesOlderThanIt_AreEvictedAndCounted()
    {
        DeclareLog("log", maxAge: TimeSpan.FromSeconds(10));
        await PublishAsync("log", 1, 2, 3); // at 0 s, 1 s, 2 s; the clock is at 3 s

        _clock.Advance(TimeSpan.FromSeconds(8)); // 11 s: messages from 0 s and 1 s are over 10 s old

        QueueSnapshot queue = _broker.GetSnapshot().Queue("log");
        (queue.Depth, queue.Dropped).Should().Be((1, 2L));
        await using Subscription<TestEvent> all = await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { StartAt = StartPosition.All });
        Drain(all).Should().Equal(3);
    }

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task LimitsQueue_MessageWithNoSubscriber_IsKeptForLaterOnes()
    {
        DeclareLog("log");
        await PublishAsync("log", 1);

        QueueSnapshot queue = _broker.GetSnapshot().Queue("log");
        (queue.Unrouted, queue.Depth, queue.Retention).Should().Be((0L, 1, RetentionPolicy.Limits));
        await using Subscription<TestEvent> later = await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { StartAt = StartPosition.All });
        Drain(later).Should().Equal(1);
    }

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task StartAtAll_OnADeadLetterQueue_ReadsDeadLettersFromBeforeTheSubscription()
    {
        await using Subscription<TestEvent> worker = await _broker.SubscribeAsync<TestEvent>("jobs", "#");
        await _broker.PublishAsync("jobs", "e", new TestEvent(1));
        await (await worker.ReadAsync()).RejectAsync("bad");

        await using Subscription<TestEvent> triage = await _broker.SubscribeAsync<TestEvent>("jobs.$dlq", "#", new SubscriptionOptions { StartAt = StartPosition.All });

        Drain(triage).Should().Equal(1);
    }

    [Fact]
    public async Task StartPosition_OnAnInterestQueue_IsRefusedWithWhatToDo()
    {
        ArgumentException error = (await FluentActions.Awaiting(async () => await _broker.SubscribeAsync<TestEvent>("interest", "#", new SubscriptionOptions { StartAt = StartPosition.All }))
            .Should().ThrowAsync<ArgumentException>()).Which;

        error.Message.Should().Contain("Interest retention").And.Contain("RetentionPolicy.Limits");
        _broker.GetSnapshot().Queue("interest").Subscriptions.Should().BeEmpty("nothing was created");
    }

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task StartPosition_WhenReattachingADurableSubscription_IsIgnored()
    {
        DeclareLog("log");
        Subscription<TestEvent> first = await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { Name = "d" });
        await PublishAsync("log", 1, 2);
        Drain(first).Should().Equal(1, 2);
        await first.DisposeAsync();

        await using Subscription<TestEvent> again = await _broker.SubscribeAsync<TestEvent>("log", "#", new SubscriptionOptions { Name = "d", StartAt = StartPosition.All });

        Drain(again).Should().BeEmpty("the durable subscription continues where it was");
    }

    [Fact]
    public void StartPosition_Values_DescribeThemselves()
    {
        StartPosition.New.Should().Be(default(StartPosition));
        StartPosition.New.IsNew.Should().BeTrue();
        StartPosition.All.ToString().Should().Be("All");
        StartPosition.FromSequence(7).ToString().Should().Be("FromSequence(7)");
        (StartPosition.FromSequence(7) == StartPosition.FromSequence(7)).Should().BeTrue();
        (StartPosition.FromSequence(7) != StartPosition.All).Should().BeTrue();
        FluentActions.Invoking(() => StartPosition.FromSequence(0)).Should().Throw<ArgumentOutOfRangeException>();
    }
}
