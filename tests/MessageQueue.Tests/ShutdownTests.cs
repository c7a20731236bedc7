using System.Threading.Channels;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Persistence;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests;

/// <summary>Guarantee 10: shutdown stops new work, lets consumers drain within a deadline, and loses nothing.</summary>
public sealed class ShutdownTests
{
    private readonly ManualTimeProvider _clock = new();

    private Broker NewBroker(TimeSpan? shutdownTimeout = null) =>
        new(new BrokerOptions { TimeProvider = _clock, ShutdownTimeout = shutdownTimeout ?? TimeSpan.FromSeconds(10) });

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_HandlerMidMessage_WaitsForItToFinishAndItsAckCounts()
    {
        // The handler ignores its token on purpose: the shutdown must wait for it to return, not cancel it. So the
        // gate opens when the test ends, whichever way it ends, and a failed assertion leaves no handler stuck.
        using var release = new TestGate("the handler, mid-message while the broker shuts down");
        Broker broker = NewBroker();
        Subscription handler = await broker.SubscribeAsync<TestEvent>("jobs", "#", (delivery, _) =>
            new ValueTask(release.PassAsync(CancellationToken.None)), new SubscriptionOptions { Name = "worker" });
        await broker.PublishAsync("jobs", "run", new TestEvent(1));
        await release.WaitForArrivals(1).OrHang("the handler to start");

        Task disposing = broker.DisposeAsync().AsTask();
        disposing.IsCompleted.Should().BeFalse("a handler is still working on a delivery");
        await FluentActions.Awaiting(async () => await broker.PublishAsync("jobs", "run", new TestEvent(2)))
            .Should().ThrowAsync<ObjectDisposedException>("new publishes stop at once");

        release.Open();
        await disposing.OrHang("the shutdown to finish after the handler returned");

        SubscriptionSnapshot worker = broker.GetSnapshot().Queue("jobs").Subscription("worker");
        worker.Acked.Should().Be(1);
        worker.Backlog.Should().Be(0);
        worker.InFlight.Should().Be(0);
        (await FluentActions.Awaiting(() => handler.Completion).Should().ThrowAsync<SubscriptionClosedException>())
            .Which.Reason.Should().Be(SubscriptionCloseReason.BrokerDisposed);
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_ConsumerNeverSettles_WaitsForTheShutdownTimeoutThenReturnsItsMessages()
    {
        Broker broker = NewBroker(TimeSpan.FromSeconds(10));
        Subscription<TestEvent> stuck = await broker.SubscribeAsync<TestEvent>("jobs", "#", new SubscriptionOptions { Name = "stuck" });
        await broker.PublishAsync("jobs", "run", new TestEvent(1));
        Delivery<TestEvent> held = await stuck.ReadAsync();

        Task disposing = broker.DisposeAsync().AsTask();
        _clock.Advance(TimeSpan.FromSeconds(9));
        disposing.IsCompleted.Should().BeFalse("the shutdown timeout has not passed");
        _clock.Advance(TimeSpan.FromSeconds(1));
        await disposing.OrHang("the shutdown after its timeout");

        (await held.AckAsync()).Should().BeFalse("the consumer was detached and the message went back");
        SubscriptionSnapshot subscription = broker.GetSnapshot().Queue("jobs").Subscription("stuck");
        subscription.Backlog.Should().Be(1, "the unsettled message stays with its durable subscription");
        subscription.InFlight.Should().Be(0);
        broker.GetSnapshot().Queue("jobs").Depth.Should().Be(1, "nothing whose publish completed is lost");
        (await FluentActions.Awaiting(() => stuck.Completion).Should().ThrowAsync<SubscriptionClosedException>())
            .Which.Reason.Should().Be(SubscriptionCloseReason.BrokerDisposed);
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_ManualClockThatNobodyMoves_EndsTheWaitAfterTheShutdownTimeoutOfRealTime()
    {
        // A short timeout, so that the real clock ends the wait well within the hang guard. This clock is never moved:
        // before, the dispose waited for it for ever.
        Broker broker = NewBroker(TimeSpan.FromMilliseconds(200));
        Subscription<TestEvent> stuck = await broker.SubscribeAsync<TestEvent>("jobs", "#", new SubscriptionOptions { Name = "stuck" });
        await broker.PublishAsync("jobs", "run", new TestEvent(1));
        Delivery<TestEvent> held = await stuck.ReadAsync();

        await broker.DisposeAsync().OrHang("the shutdown of a broker whose manual clock nobody moves");

        _clock.GetUtcNow().Should().Be(ManualTimeProvider.DefaultStart, "the broker's clock never moved");
        (await held.AckAsync()).Should().BeFalse("the consumer was detached and the message went back");
        SubscriptionSnapshot subscription = broker.GetSnapshot().Queue("jobs").Subscription("stuck");
        (subscription.Backlog, subscription.InFlight).Should().Be((1, 0), "the unsettled message stays with its durable subscription");
        (await FluentActions.Awaiting(() => stuck.Completion).Should().ThrowAsync<SubscriptionClosedException>())
            .Which.Reason.Should().Be(SubscriptionCloseReason.BrokerDisposed);
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_UnreadDeliveries_GoBackAtOnceWithoutWaitingForTheTimeout()
    {
        Broker broker = NewBroker(Timeout.InfiniteTimeSpan);
        Subscription<TestEvent> idle = await broker.SubscribeAsync<TestEvent>("jobs", "#", new SubscriptionOptions { Name = "idle", MaxInFlight = 10 });
        for (int i = 0; i < 5; i++)
        {
            await broker.PublishAsync("jobs", "run", new TestEvent(i));
        }

        await broker.DisposeAsync().OrHang("the shutdown: nothing was read, so there is nothing to wait for");

        SubscriptionSnapshot subscription = broker.GetSnapshot().Queue("jobs").Subscription("idle");
        subscription.Backlog.Should().Be(5);
        subscription.InFlight.Should().Be(0);
        idle.TryRead(out _).Should().BeFalse("the unread deliveries were taken back");
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_DeliveriesWaitingOutANackBackoff_GoBackAtOnceWithoutWaitingForTheTimeout()
    {
        Broker broker = NewBroker(Timeout.InfiniteTimeSpan);
        Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("jobs", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 10 });
        for (int i = 0; i < 3; i++)
        {
            await broker.PublishAsync("jobs", "run", new TestEvent(i));
        }

        for (int i = 0; i < 3; i++)
        {
            Delivery<TestEvent> delivery = await worker.ReadAsync();
            (await delivery.NackAsync(TimeSpan.FromMinutes(5))).Should().BeTrue();
        }

        // No reader holds these three; they wait on a timer that this clock never fires. The shutdown has nothing to wait for.
        await broker.DisposeAsync().OrHang("the shutdown: the backoff of a nacked delivery is not a handler at work");

        SubscriptionSnapshot subscription = broker.GetSnapshot().Queue("jobs").Subscription("worker");
        subscription.Backlog.Should().Be(3, "the nacked messages went back to their durable subscription");
        subscription.InFlight.Should().Be(0);
        subscription.Nacked.Should().Be(3);
        broker.GetSnapshot().Queue("jobs").Depth.Should().Be(3, "nothing is lost");
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_ConsumersSettleWhileDraining_AcksAndRejectsStillWork()
    {
        Broker broker = NewBroker();
        Subscription<TestEvent> consumer = await broker.SubscribeAsync<TestEvent>("jobs", "#", new SubscriptionOptions { Name = "c" });
        await broker.PublishAsync("jobs", "run", new TestEvent(1));
        await broker.PublishAsync("jobs", "run", new TestEvent(2));
        Delivery<TestEvent> first = await consumer.ReadAsync();
        Delivery<TestEvent> second = await consumer.ReadAsync();

        Task disposing = broker.DisposeAsync().AsTask();
        (await first.AckAsync()).Should().BeTrue();
        disposing.IsCompleted.Should().BeFalse();
        (await second.RejectAsync("shutting down, cannot handle")).Should().BeTrue();
        await disposing.OrHang("the shutdown once both were settled");

        BrokerSnapshot snapshot = broker.GetSnapshot();
        snapshot.Queue("jobs").Depth.Should().Be(0);
        snapshot.Queue("jobs.$dlq").Depth.Should().Be(1, "dead letters are accepted while the broker drains");
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_ReadAllLoop_EndsQuietlyAndCompletionReportsTheReason()
    {
        Broker broker = NewBroker();
        Subscription<TestEvent> subscription = await broker.SubscribeAsync<TestEvent>("jobs", "#");
        Task<int> loop = Task.Run(async () =>
        {
            int count = 0;
            await foreach (Delivery<TestEvent> delivery in subscription.ReadAllAsync())
            {
                await delivery.AckAsync();
                count++;
            }

            return count;
        });
        await broker.PublishAsync("jobs", "run", new TestEvent(1));

        await broker.DisposeAsync().OrHang("the shutdown, once the read loop settled what it read");

        (await loop.OrHang("the read loop to end")).Should().BeLessThanOrEqualTo(1);
        SubscriptionClosedException reason = (await FluentActions.Awaiting(() => subscription.Completion).Should().ThrowAsync<SubscriptionClosedException>()).Which;
        (reason.Reason, reason.Queue, reason.Subscription).Should().Be((SubscriptionCloseReason.BrokerDisposed, "jobs", (string?)null));
        reason.Message.Should().Contain("broker was disposed");
        await FluentActions.Awaiting(async () => await subscription.ReadAsync()).Should().ThrowAsync<ChannelClosedException>();
        (await subscription.WaitToReadAsync()).Should().BeFalse();
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_PublisherWaitingForRoom_IsReleasedWithObjectDisposed()
    {
        Broker broker = NewBroker();
        broker.DeclareQueue<TestEvent>("full", new QueueOptions { MaxMessages = 1 });
        await using Subscription<TestEvent> subscription = await broker.SubscribeAsync<TestEvent>("full", "#");
        await broker.PublishAsync("full", "e", new TestEvent(1));
        Task<PublishReceipt> waiting = broker.PublishAsync("full", "e", new TestEvent(2)).AsTask();

        await broker.DisposeAsync();

        await FluentActions.Awaiting(() => waiting).Should().ThrowAsync<ObjectDisposedException>();
        broker.GetSnapshot().Queue("full").Published.Should().Be(1);
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_Afterwards_EveryOperationThrowsObjectDisposedButSnapshotStillWorks()
    {
        Broker broker = NewBroker();
        BrokerClient client = broker.Connect("late");
        await broker.DisposeAsync();

        await FluentActions.Awaiting(async () => await broker.PublishAsync("q", "e", new TestEvent(1))).Should().ThrowAsync<ObjectDisposedException>();
        FluentActions.Invoking(() => broker.TryPublish("q", "e", new TestEvent(1), out _)).Should().Throw<ObjectDisposedException>();
        await FluentActions.Awaiting(async () => await broker.SubscribeAsync<TestEvent>("q", "e")).Should().ThrowAsync<ObjectDisposedException>();
        await FluentActions.Awaiting(async () => await client.PublishAsync("q", "e", new TestEvent(1))).Should().ThrowAsync<ObjectDisposedException>();
        FluentActions.Invoking(() => broker.Connect("another")).Should().Throw<ObjectDisposedException>();
        FluentActions.Invoking(() => broker.DeclareQueue<TestEvent>("q")).Should().Throw<ObjectDisposedException>();
        await FluentActions.Awaiting(async () => await broker.DeleteSubscriptionAsync("q", "s")).Should().ThrowAsync<ObjectDisposedException>();
        broker.GetSnapshot().Should().NotBeNull("a snapshot after shutdown shows what was left behind");
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_CalledTwiceOrConcurrently_StopsOnce()
    {
        Broker broker = NewBroker();
        Subscription<TestEvent> stuck = await broker.SubscribeAsync<TestEvent>("jobs", "#");
        await broker.PublishAsync("jobs", "run", new TestEvent(1));
        Delivery<TestEvent> held = await stuck.ReadAsync();

        Task first = broker.DisposeAsync().AsTask();
        Task second = broker.DisposeAsync().AsTask();
        second.IsCompleted.Should().BeFalse("the second call waits for the same shutdown");

        await held.AckAsync();
        await Task.WhenAll(first, second).OrHang("both dispose calls");
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task SubscriptionDisposeAsync_ByItsOwner_CompletesSuccessfully()
    {
        await using Broker broker = NewBroker();
        Subscription<TestEvent> subscription = await broker.SubscribeAsync<TestEvent>("jobs", "#");

        await subscription.DisposeAsync();
        await subscription.DisposeAsync();

        subscription.Completion.IsCompletedSuccessfully.Should().BeTrue();
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_CalledFromAHandler_DoesNotWaitForThatHandlersOwnDelivery()
    {
        Broker broker = NewBroker(Timeout.InfiniteTimeSpan);
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await broker.SubscribeAsync<TestEvent>("jobs", "#", async (_, _) =>
        {
            await broker.DisposeAsync();
            disposed.TrySetResult();
        }, new SubscriptionOptions { Name = "stopper" });

        await broker.PublishAsync("jobs", "stop", new TestEvent(1));

        await disposed.Task.OrHang("a shutdown started by a handler, with an infinite shutdown timeout");
        SubscriptionSnapshot stopper = broker.GetSnapshot().Queue("jobs").Subscription("stopper");
        (stopper.Backlog + stopper.Acked).Should().Be(1, "the handler's own message is kept for the next start or was acked; never lost");
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task Dispose_BlocksUntilStopped_AndRefusesTheStoresWriterThread()
    {
        var broker = new Broker(new BrokerOptions { Store = new InMemoryMessageStore(), Durability = Durability.Committed });
        Exception? onWriterThread = null;
        var called = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, broker) && instrument.Name == "messaging.client.sent.messages")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, _, _) =>
        {
            // A durable message is handed to its subscriptions, and counted, on the store's writer thread.
            try
            {
                broker.Dispose();
            }
            catch (InvalidOperationException error)
            {
                onWriterThread = error;
            }

            called.TrySetResult();
        });
        listener.Start();
        await using Subscription<TestEvent> reader = await broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "billing" });

        await broker.PublishAsync("orders", "created", new TestEvent(1));
        await called.Task.OrHang("the sent counter's callback");
        listener.Dispose();

        onWriterThread.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Contain("store's writer thread");
        Delivery<TestEvent> delivery = await reader.ReadAsync();
        delivery.Payload.Number.Should().Be(1, "the broker kept working");
        await delivery.AckAsync();

        broker.Dispose();
        Func<Task> afterDispose = async () => await broker.PublishAsync("orders", "created", new TestEvent(2));
        await afterDispose.Should().ThrowAsync<ObjectDisposedException>("Dispose returned once the broker had stopped");
    }
}
