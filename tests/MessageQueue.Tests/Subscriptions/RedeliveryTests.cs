using System.Globalization;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.Subscriptions;

/// <summary>
/// Guarantee 6: ack deadlines, nack delays and backoff, MaxDeliveries and dead letters with their
/// history. Every test drives a manual clock; nothing waits for real time.
/// </summary>
public sealed class RedeliveryTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 11, 21, 9, 0, 0, TimeSpan.Zero);
    private readonly ManualTimeProvider _clock = new(Start);
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        // No shutdown timeout: on this clock, which nobody moves at the end, a shutdown that waited for a consumer
        // left holding a delivery by a failed assertion would wait forever instead of reporting the failure.
        _broker = new Broker(new BrokerOptions { TimeProvider = _clock, ShutdownTimeout = TimeSpan.Zero });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private Task<Subscription<TestEvent>> SubscribeAsync(SubscriptionOptions options) =>
        _broker.SubscribeAsync<TestEvent>("jobs", "#", options).AsTask();

    private Task PublishAsync(int number) => _broker.PublishAsync("jobs", "run", new TestEvent(number)).AsTask();

    private static Delivery<TestEvent> ReadNow(Subscription<TestEvent> subscription)
    {
        subscription.TryRead(out Delivery<TestEvent> delivery).Should().BeTrue("a delivery is expected now");
        return delivery;
    }

    private static void NothingNow(Subscription<TestEvent> subscription) =>
        subscription.TryRead(out _).Should().BeFalse("nothing is due yet");

    // ------------------------------------------------------------------ ack deadlines

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task AckTimeout_DeliveryNotSettledInTime_IsDeliveredAgainWithTheNextAttempt()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new() { Name = "w", AckTimeout = TimeSpan.FromSeconds(30) });
        await PublishAsync(1);
        Delivery<TestEvent> first = ReadNow(consumer);

        _clock.Advance(TimeSpan.FromSeconds(29));
        NothingNow(consumer);
        _clock.Advance(TimeSpan.FromSeconds(1));

        Delivery<TestEvent> second = ReadNow(consumer);
        (second.Payload.Number, second.Attempt).Should().Be((1, 2));
        (await first.AckAsync()).Should().BeFalse("the first delivery timed out; its message was delivered again");
        (await second.AckAsync()).Should().BeTrue();
        SubscriptionSnapshot state = _broker.GetSnapshot().Queue("jobs").Subscription("w");
        (state.TimedOut, state.Redelivered, state.Acked, state.Backlog, state.InFlight).Should().Be((1, 1, 1, 0, 0));
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task ExtendAsync_BeforeTheDeadline_StartsItAgainFromNow()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new() { AckTimeout = TimeSpan.FromSeconds(10) });
        await PublishAsync(1);
        Delivery<TestEvent> delivery = ReadNow(consumer);

        _clock.Advance(TimeSpan.FromSeconds(8));
        (await delivery.ExtendAsync()).Should().BeTrue();
        _clock.Advance(TimeSpan.FromSeconds(9));
        NothingNow(consumer);
        _clock.Advance(TimeSpan.FromSeconds(1));

        ReadNow(consumer).Attempt.Should().Be(2, "the deadline ran 10 s from the extension");
        (await delivery.ExtendAsync()).Should().BeFalse("too late: the delivery timed out");
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task AckTimeout_SeveralDeliveriesWithDifferentDeadlines_EachTimesOutOnItsOwn()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new() { AckTimeout = TimeSpan.FromSeconds(10), MaxInFlight = 1 });
        await PublishAsync(1);
        await PublishAsync(2);
        Delivery<TestEvent> one = ReadNow(consumer);
        _clock.Advance(TimeSpan.FromSeconds(4));
        await one.AckAsync();
        Delivery<TestEvent> two = ReadNow(consumer); // read at t = 4 s

        _clock.Advance(TimeSpan.FromSeconds(9)); // t = 13 s: message 1's old deadline has passed, but it was acked
        NothingNow(consumer);
        _clock.Advance(TimeSpan.FromSeconds(1)); // t = 14 s

        (ReadNow(consumer).Payload.Number, two.Payload.Number).Should().Be((2, 2));
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task AckTimeout_NotSet_NoTimerIsEverCreated()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new());
        for (int i = 0; i < 10; i++)
        {
            await PublishAsync(i);
            await ReadNow(consumer).AckAsync();
        }

        _clock.ActiveTimers.Should().Be(0, "deliveries without a deadline or a backoff cost no timer");
    }

    // ------------------------------------------------------------------ nack delays and backoff

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task NackAsync_NoDelayGiven_FollowsTheBackoffScheduleAndRepeatsItsLastStep()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new() { RedeliveryDelays = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)] });
        await PublishAsync(1);

        var waited = new List<TimeSpan>();
        Delivery<TestEvent> delivery = ReadNow(consumer);
        for (int attempt = 1; attempt <= 4; attempt++)
        {
            (await delivery.NackAsync()).Should().BeTrue();
            TimeSpan elapsed = TimeSpan.Zero;
            while (!consumer.TryRead(out delivery))
            {
                _clock.Advance(TimeSpan.FromSeconds(1));
                elapsed += TimeSpan.FromSeconds(1);
                elapsed.Should().BeLessThan(TimeSpan.FromMinutes(1), "the redelivery must come");
            }

            delivery.Attempt.Should().Be(attempt + 1);
            waited.Add(elapsed);
        }

        waited.Should().Equal(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30));
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task NackAsync_DefaultOptions_WaitsOneThenFiveThenThirtySeconds_SoBareNacksCannotBurnThroughAttempts()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new() { Name = "w" });
        await PublishAsync(1);

        var waited = new List<TimeSpan>();
        Delivery<TestEvent> delivery = ReadNow(consumer);
        while (!delivery.IsLastAttempt)
        {
            (await delivery.NackAsync()).Should().BeTrue();
            NothingNow(consumer);
            TimeSpan elapsed = TimeSpan.Zero;
            while (!consumer.TryRead(out delivery))
            {
                _clock.Advance(TimeSpan.FromSeconds(1));
                elapsed += TimeSpan.FromSeconds(1);
                elapsed.Should().BeLessThan(TimeSpan.FromMinutes(1), "the redelivery must come");
            }

            waited.Add(elapsed);
        }

        delivery.Attempt.Should().Be(10, "MaxDeliveries is 10 by default");
        waited.Should().Equal([TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), .. Enumerable.Repeat(TimeSpan.FromSeconds(30), 7)]);
        (await delivery.NackAsync()).Should().BeTrue();
        _broker.GetSnapshot().Queue("jobs.$dlq").Depth.Should().Be(1, "ten deliveries took 246 s of backoff, then the message was dead-lettered");
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task TimeToLive_RunsOutWhileTheMessageWaitsOutItsBackoff_IsNeverDeliveredAgainAndIsDeadLetteredAsExpired()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new() { Name = "w" });
        await _broker.PublishAsync("jobs", "run", new TestEvent(1), new PublishOptions { TimeToLive = TimeSpan.FromSeconds(3) });

        await ReadNow(consumer).NackAsync();
        _clock.Advance(TimeSpan.FromSeconds(1));
        Delivery<TestEvent> second = ReadNow(consumer);
        second.Attempt.Should().Be(2, "at 1 s the message was still alive");
        await second.NackAsync(); // the next try is due at 6 s, after the message expires at 3 s

        _clock.Advance(TimeSpan.FromSeconds(5));
        NothingNow(consumer);

        SubscriptionSnapshot state = _broker.GetSnapshot().Queue("jobs").Subscription("w");
        (state.Expired, state.Acked, state.InFlight, state.Backlog).Should().Be((1, 0, 0, 0));
        await using Subscription<TestEvent> dlq = await _broker.SubscribeAsync<TestEvent>("jobs.$dlq", "#", new SubscriptionOptions { StartAt = StartPosition.All });
        Delivery<TestEvent> deadLetter = ReadNow(dlq);
        deadLetter.Message.Headers.Should().Contain(MessageHeaders.DeadLetterReason, DeadLetterReasons.Expired).And.Contain(MessageHeaders.Attempts, "2");
    }

    [Fact]
    [Trait("Guarantee", "6")]
    [Trait("Guarantee", "3")]
    public async Task NackAsync_WithDelayAndMaxInFlightOne_NothingNewerOvertakesTheWaitingMessage()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new() { MaxInFlight = 1 });
        await PublishAsync(1);
        await PublishAsync(2);

        (await ReadNow(consumer).NackAsync(TimeSpan.FromSeconds(10))).Should().BeTrue();
        _clock.Advance(TimeSpan.FromSeconds(9.9));
        NothingNow(consumer);
        _broker.GetSnapshot().Queue("jobs").Subscriptions[0].InFlight.Should().Be(1, "the waiting message keeps its place and its credit");

        _clock.Advance(TimeSpan.FromSeconds(0.1));
        Delivery<TestEvent> again = ReadNow(consumer);
        (again.Payload.Number, again.Attempt).Should().Be((1, 2));
        await again.AckAsync();
        ReadNow(consumer).Payload.Number.Should().Be(2);
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task NackAsync_WhileWaiting_TheOriginalDeliveryIsNoLongerPending()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new());
        await PublishAsync(1);
        Delivery<TestEvent> delivery = ReadNow(consumer);

        (await delivery.NackAsync(TimeSpan.FromSeconds(5))).Should().BeTrue();

        (await delivery.AckAsync()).Should().BeFalse();
        (await delivery.NackAsync()).Should().BeFalse();
        (await delivery.ExtendAsync()).Should().BeFalse();
        (await delivery.RejectAsync()).Should().BeFalse();
        _clock.Advance(TimeSpan.FromSeconds(5));
        (await ReadNow(consumer).AckAsync()).Should().BeTrue();
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task NackAsync_WaitingMessageWhenTheConsumerLeaves_GoesBackToTheSubscriptionAtOnce()
    {
        Subscription<TestEvent> first = await SubscribeAsync(new() { Name = "w" });
        await PublishAsync(1);
        await ReadNow(first).NackAsync(TimeSpan.FromMinutes(5));

        await first.DisposeAsync();

        await using Subscription<TestEvent> second = await SubscribeAsync(new() { Name = "w" });
        Delivery<TestEvent> delivery = ReadNow(second);
        (delivery.Payload.Number, delivery.Attempt).Should().Be((1, 2));
    }

    [Fact]
    public async Task NackAsync_DelayOutOfRange_ThrowsAndTheDeliveryStaysPending()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new());
        await PublishAsync(1);
        Delivery<TestEvent> delivery = ReadNow(consumer);

        await FluentActions.Awaiting(async () => await delivery.NackAsync(TimeSpan.FromSeconds(-1))).Should().ThrowAsync<ArgumentOutOfRangeException>().WithMessage("*zero or positive*");
        await FluentActions.Awaiting(async () => await delivery.NackAsync(Timeout.InfiniteTimeSpan)).Should().ThrowAsync<ArgumentOutOfRangeException>().WithMessage("*must come back*");
        await FluentActions.Awaiting(async () => await delivery.NackAsync(TimeSpan.FromDays(60))).Should().ThrowAsync<ArgumentOutOfRangeException>().WithMessage("*longest finite timeout*");
        (await delivery.AckAsync()).Should().BeTrue();
    }

    // ------------------------------------------------------------------ MaxDeliveries and dead letters

    [Fact]
    [Trait("Guarantee", "6")]
    [Trait("Guarantee", "1")]
    public async Task MaxDeliveries_Reached_LastAttemptIsFlaggedAndTheNextFailureDeadLettersWithHistory()
    {
        await using Subscription<TestEvent> dlq = await _broker.SubscribeAsync<TestEvent>("jobs.$dlq", "#");
        // With an ack deadline the broker keeps read times, so the history shows when each delivery was read.
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new() { Name = "w", MaxDeliveries = 3, AckTimeout = TimeSpan.FromHours(1) });
        await PublishAsync(7);

        var flags = new List<(int Attempt, bool Last)>();
        for (int attempt = 1; attempt <= 3; attempt++)
        {
            Delivery<TestEvent> delivery = ReadNow(consumer);
            flags.Add((delivery.Attempt, delivery.IsLastAttempt));
            _clock.Advance(TimeSpan.FromSeconds(2));
            (await delivery.NackAsync(TimeSpan.Zero)).Should().BeTrue();
        }

        flags.Should().Equal((1, false), (2, false), (3, true));
        NothingNow(consumer);
        Delivery<TestEvent> dead = ReadNow(dlq);
        dead.Payload.Number.Should().Be(7);
        dead.Message.Headers.Should().Contain(MessageHeaders.DeadLetterReason, DeadLetterReasons.MaxDeliveries)
            .And.Contain(MessageHeaders.Attempts, "3")
            .And.Contain(MessageHeaders.SourceSubscription, "w")
            .And.Contain(MessageHeaders.FirstDeliveredAt, Start.ToString("O", CultureInfo.InvariantCulture))
            .And.Contain(MessageHeaders.LastDeliveredAt, Start.AddSeconds(4).ToString("O", CultureInfo.InvariantCulture))
            .And.Contain(MessageHeaders.DeadLetteredAt, Start.AddSeconds(6).ToString("O", CultureInfo.InvariantCulture));
        dead.Message.Headers.Should().NotContainKey(MessageHeaders.LastExceptionType, "no handler threw");
        SubscriptionSnapshot state = _broker.GetSnapshot().Queue("jobs").Subscription("w");
        (state.Nacked, state.DeadLettered, state.Backlog, state.InFlight).Should().Be((3, 1, 0, 0));
        _broker.GetSnapshot().Queue("jobs").Depth.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task MaxDeliveries_ReachedThroughAckTimeouts_DeadLettersInsteadOfRedelivering()
    {
        await using Subscription<TestEvent> consumer = await SubscribeAsync(new() { AckTimeout = TimeSpan.FromSeconds(5), MaxDeliveries = 2 });
        await PublishAsync(1);

        ReadNow(consumer).IsLastAttempt.Should().BeFalse();
        _clock.Advance(TimeSpan.FromSeconds(5));
        ReadNow(consumer).IsLastAttempt.Should().BeTrue();
        _clock.Advance(TimeSpan.FromSeconds(5));

        NothingNow(consumer);
        QueueSnapshot dlq = _broker.GetSnapshot().Queue("jobs.$dlq");
        dlq.Depth.Should().Be(1);
        _broker.GetSnapshot().Queue("jobs").Subscriptions[0].TimedOut.Should().Be(2);
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task MaxDeliveries_ConsumerLeavesHoldingALastAttempt_DeadLettersIt()
    {
        Subscription<TestEvent> first = await SubscribeAsync(new() { Name = "w", MaxDeliveries = 1 });
        await PublishAsync(1);
        ReadNow(first).IsLastAttempt.Should().BeTrue();

        await first.DisposeAsync();

        BrokerSnapshot snapshot = _broker.GetSnapshot();
        snapshot.Queue("jobs.$dlq").Depth.Should().Be(1);
        SubscriptionSnapshot state = snapshot.Queue("jobs").Subscription("w");
        (state.Backlog, state.DeadLettered).Should().Be((0, 1), "the subscription counts what its leaving consumer's last attempt cost it");
        (snapshot.Queue("jobs").Depth, snapshot.Queue("jobs").DeadLettered).Should().Be((0, 1));
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task Handler_Throws_RetriesOnTheBackoffScheduleThenDeadLettersWithTheLastException()
    {
        await using Subscription<TestEvent> dlq = await _broker.SubscribeAsync<TestEvent>("jobs.$dlq", "#");
        var calls = new List<(int Attempt, bool Last, DateTimeOffset At)>();
        TaskCompletionSource[] called = [new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously)];
        await using Subscription handler = await _broker.SubscribeAsync<TestEvent>("jobs", "#", (delivery, _) =>
        {
            lock (calls)
            {
                calls.Add((delivery.Attempt, delivery.IsLastAttempt, _clock.GetUtcNow()));
                called[calls.Count - 1].TrySetResult();
            }

            throw new InvalidOperationException($"cannot process attempt {delivery.Attempt}");
        }, new SubscriptionOptions { Name = "h", MaxDeliveries = 3, RedeliveryDelays = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)] });
        await PublishAsync(1);

        // Each retry becomes due only when the clock reaches it. Advance only after the handler has
        // failed (and the nack has armed the backoff): the snapshot's nack count says so.
        await called[0].Task.OrHang("the first attempt");
        await NackedAsync("h", 1);
        _clock.Advance(TimeSpan.FromSeconds(1));
        await called[1].Task.OrHang("the second attempt");
        await NackedAsync("h", 2);
        _clock.Advance(TimeSpan.FromSeconds(5));
        await called[2].Task.OrHang("the third attempt");

        Delivery<TestEvent> dead = await dlq.ReadAsync().OrHang("the dead letter");
        calls.Select(c => (c.Attempt, c.Last, c.At - Start)).Should().Equal(
            (1, false, TimeSpan.Zero), (2, false, TimeSpan.FromSeconds(1)), (3, true, TimeSpan.FromSeconds(6)));

        // Without an ack deadline, the history records when each delivery failed.
        dead.Message.Headers.Should().Contain(MessageHeaders.DeadLetterReason, DeadLetterReasons.MaxDeliveries)
            .And.Contain(MessageHeaders.FirstDeliveredAt, Start.ToString("O", CultureInfo.InvariantCulture))
            .And.Contain(MessageHeaders.LastDeliveredAt, Start.AddSeconds(6).ToString("O", CultureInfo.InvariantCulture))
            .And.Contain(MessageHeaders.LastExceptionType, typeof(InvalidOperationException).FullName!)
            .And.Contain(MessageHeaders.LastExceptionMessage, "cannot process attempt 3");
        _broker.GetSnapshot().Queue("jobs").Subscription("h").HandlerFailures.Should().Be(3);
    }

    /// <summary>
    /// Waits until the handler loop has nacked a delivery: the handler's return (its signal) comes just
    /// before the nack, on the loop's thread. Each snapshot is taken after the previous one proved false,
    /// and the loop's next step is the nack itself, so this waits a handful of instructions. Bounded by the
    /// hang guard, and when that passes it fails saying what did not happen, as an OrHang wait does.
    /// </summary>
    private async Task NackedAsync(string subscription, long count)
    {
        using var guard = new CancellationTokenSource(TestWait.HangGuard);
        while (_broker.GetSnapshot().Queue("jobs").Subscription(subscription).Nacked < count)
        {
            if (guard.IsCancellationRequested)
            {
                throw new TimeoutException($"Hung: the handler loop of '{subscription}' did not nack delivery {count} within {TestWait.HangGuard.TotalSeconds:0} s.");
            }

            await Task.Yield();
        }
    }
}
