using System.Collections.Concurrent;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests;

/// <summary>
/// Guarantee 9: user code never runs under a broker lock, and a slow, throwing or cancelled handler
/// affects only its own subscription.
/// </summary>
/// <remarks>
/// The broker's locks are re-entrant on one thread, so calling back into the broker from a callback
/// on the same thread would pass even if the callback ran under a lock. Each re-entrance test calls
/// the broker from another thread and waits for it synchronously: a callback that held a broker lock
/// would deadlock, and the hang guard would fail the test.
/// </remarks>
public sealed class IsolationTests : IAsyncLifetime
{
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        _broker = new Broker();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    /// <summary>
    /// Publishes, subscribes and takes a snapshot from a thread-pool thread, blocking the caller until
    /// done. Returns whether it finished; the caller records it and the test asserts it afterwards,
    /// because the broker catches exceptions thrown by some callbacks (event handlers).
    /// </summary>
    private bool ReenterFromAnotherThread(string queue) =>
        Task.Run(async () =>
        {
            await _broker.PublishAsync(queue, "reentered", new TestEvent(-1));
            await using Subscription<TestEvent> probe = await _broker.SubscribeAsync<TestEvent>(queue, "probe");
            _broker.GetSnapshot();
        }).Wait(TestWait.HangGuard);

    [Fact]
    [Trait("Guarantee", "9")]
    public async Task Handler_ReentersBrokerFromAnotherThread_DoesNotDeadlock()
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription handler = await _broker.SubscribeAsync<TestEvent>("orders", "created", (delivery, _) =>
        {
            done.TrySetResult(ReenterFromAnotherThread("orders"));
            return ValueTask.CompletedTask;
        });

        await _broker.PublishAsync("orders", "created", new TestEvent(1));

        (await done.Task.OrHang("the handler to re-enter the broker")).Should().BeTrue("a handler holding a broker lock would deadlock the other thread");
        _broker.GetSnapshot().Queue("orders").Published.Should().Be(2);
    }

    [Fact]
    [Trait("Guarantee", "9")]
    public async Task MessageDroppedEvent_ReentersBrokerFromAnotherThread_DoesNotDeadlock()
    {
        _broker.DeclareQueue<TestEvent>("lossy", new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.DropOldest });
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("lossy", "e", new SubscriptionOptions { MaxInFlight = 1 });
        int raised = 0;
        bool? reentered = null;
        _broker.MessageDropped += (_, e) =>
        {
            if (Interlocked.Increment(ref raised) == 1)
            {
                reentered = ReenterFromAnotherThread("lossy");
            }
        };

        await _broker.PublishAsync("lossy", "e", new TestEvent(0)); // in flight
        await _broker.PublishAsync("lossy", "e", new TestEvent(1)); // waits (over the bound: everything else in flight)
        await _broker.PublishAsync("lossy", "e", new TestEvent(2)); // drops 1, raising the event

        raised.Should().Be(1);
        reentered.Should().BeTrue("an event raised under a broker lock would deadlock the other thread");
        _broker.GetSnapshot().EventHandlerFailures.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "9")]
    public async Task MessageDroppedEvent_HandlerThrows_IsCountedAndRecorded_AndThePublishAndOtherHandlersGoOn()
    {
        _broker.DeclareQueue<TestEvent>("lossy", new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.DropOldest });
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("lossy", "e", new SubscriptionOptions { MaxInFlight = 1 });
        var seen = new List<long>();
        _broker.MessageDropped += (_, _) => throw new InvalidOperationException("audit store is down");
        _broker.MessageDropped += (_, e) => seen.Add(e.Sequence);

        await _broker.PublishAsync("lossy", "e", new TestEvent(0));
        await _broker.PublishAsync("lossy", "e", new TestEvent(1));
        PublishReceipt receipt = await _broker.PublishAsync("lossy", "e", new TestEvent(2)); // drops 1

        receipt.Sequence.Should().Be(3, "a throwing event handler never fails the publish that caused the drop");
        seen.Should().Equal(2L);
        BrokerSnapshot snapshot = _broker.GetSnapshot();
        snapshot.EventHandlerFailures.Should().Be(1);
        snapshot.LastEventHandlerFailure.Should().Be("System.InvalidOperationException: audit store is down");
    }

    [Fact]
    [Trait("Guarantee", "9")]
    public async Task CompletionContinuation_ReentersBrokerFromAnotherThread_DoesNotDeadlock()
    {
        Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("orders", "created");
        Task<bool> continuation = subscription.Completion.ContinueWith(
            _ => ReenterFromAnotherThread("orders"),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

        await subscription.DisposeAsync();

        (await continuation.OrHang("the completion continuation")).Should().BeTrue("a continuation run under a broker lock would deadlock the other thread");
    }

    [Fact]
    [Trait("Guarantee", "9")]
    public async Task MessageDroppedEvent_HandlerThrows_IsCountedAndThePublishSucceeds()
    {
        _broker.DeclareQueue<TestEvent>("lossy", new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.DropOldest });
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("lossy", "e", new SubscriptionOptions { MaxInFlight = 1 });
        _broker.MessageDropped += (_, _) => throw new InvalidOperationException("a broken event handler");
        int secondHandlerCalls = 0;
        _broker.MessageDropped += (_, _) => secondHandlerCalls++;

        await _broker.PublishAsync("lossy", "e", new TestEvent(0));
        await _broker.PublishAsync("lossy", "e", new TestEvent(1));
        PublishReceipt receipt = await _broker.PublishAsync("lossy", "e", new TestEvent(2));

        receipt.Sequence.Should().Be(3);
        secondHandlerCalls.Should().Be(1, "one throwing handler does not stop the others");
        _broker.GetSnapshot().EventHandlerFailures.Should().Be(1);
    }

    [Fact]
    [Trait("Guarantee", "9")]
    public async Task Handler_Slow_DoesNotDelayOtherSubscriptionsOfTheQueue()
    {
        // The slow handler waits at the gate with its own token: disposing its subscription ends the wait, so a
        // failed assertion below ends the test with its message rather than a dispose that waits for the handler.
        using var slowGate = new TestGate("the slow handler, on its first message");
        await using Subscription slow = await _broker.SubscribeAsync<TestEvent>("orders", "#", (_, cancellationToken) =>
            new ValueTask(slowGate.PassAsync(cancellationToken)), new SubscriptionOptions { Name = "slow" });

        var fastSeen = new ConcurrentQueue<int>();
        var fastDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription fast = await _broker.SubscribeAsync<TestEvent>("orders", "#", (delivery, _) =>
        {
            fastSeen.Enqueue(delivery.Payload.Number);
            if (fastSeen.Count == 50)
            {
                fastDone.TrySetResult();
            }

            return ValueTask.CompletedTask;
        }, new SubscriptionOptions { Name = "fast" });

        for (int i = 0; i < 50; i++)
        {
            await _broker.PublishAsync("orders", "created", new TestEvent(i));
        }

        await fastDone.Task.OrHang("the fast subscription to get every message while the slow one is stuck");
        await slowGate.WaitForArrivals(1).OrHang("the slow handler's first call");
        fastSeen.Should().Equal(Enumerable.Range(0, 50));
        slowGate.Arrivals.Should().Be(1, "the slow handler is still on its first message");
        SubscriptionSnapshot slowState = _broker.GetSnapshot().Queue("orders").Subscription("slow");
        (slowState.InFlight + slowState.Backlog).Should().Be(50, "the slow subscription keeps everything, nothing is lost");
    }

    [Fact]
    [Trait("Guarantee", "9")]
    public async Task Handler_Throws_OnlyItsOwnSubscriptionRetriesAndTheFailuresAreCounted()
    {
        var failingAttempts = new ConcurrentQueue<(int, int)>();
        var failingDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription failing = await _broker.SubscribeAsync<TestEvent>("orders", "#", (delivery, _) =>
        {
            failingAttempts.Enqueue((delivery.Payload.Number, delivery.Attempt));
            if (delivery.Payload.Number == 3 && delivery.Attempt <= 2)
            {
                throw new InvalidOperationException("cannot handle 3 yet");
            }

            if (delivery.Payload.Number == 9)
            {
                failingDone.TrySetResult();
            }

            return ValueTask.CompletedTask;
        }, new SubscriptionOptions { Name = "failing", MaxInFlight = 1, RedeliveryDelays = [] });

        var healthy = new ConcurrentQueue<(int, int)>();
        var healthyDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription healthySubscription = await _broker.SubscribeAsync<TestEvent>("orders", "#", (delivery, _) =>
        {
            healthy.Enqueue((delivery.Payload.Number, delivery.Attempt));
            if (delivery.Payload.Number == 9)
            {
                healthyDone.TrySetResult();
            }

            return ValueTask.CompletedTask;
        }, new SubscriptionOptions { Name = "healthy" });

        for (int i = 0; i < 10; i++)
        {
            await _broker.PublishAsync("orders", "created", new TestEvent(i));
        }

        await Task.WhenAll(failingDone.Task, healthyDone.Task).OrHang("both handlers to reach the last message");
        healthy.Should().Equal(Enumerable.Range(0, 10).Select(i => (i, 1)), "the other subscription saw no retries");
        var expected = new List<(int, int)>();
        for (int i = 0; i < 10; i++)
        {
            expected.Add((i, 1));
            if (i == 3)
            {
                expected.Add((3, 2));
                expected.Add((3, 3));
            }
        }

        failingAttempts.Should().Equal(expected);
        QueueSnapshot queue = _broker.GetSnapshot().Queue("orders");
        queue.Subscription("failing").HandlerFailures.Should().Be(2);
        queue.Subscription("failing").Nacked.Should().Be(2);
        queue.Subscription("healthy").HandlerFailures.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "9")]
    public async Task HandlerSubscriptionDisposeAsync_CancelsOnlyItsOwnHandlerAndReturnsItsMessage()
    {
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Disposed again at the end whatever happens: only its dispose ends the handler, and a failure before the
        // dispose below would otherwise leave the broker's shutdown waiting out its timeout for it.
        await using Subscription stuck = await _broker.SubscribeAsync<TestEvent>("orders", "#", async (_, cancellationToken) =>
        {
            entered.TrySetResult();
            var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using CancellationTokenRegistration registration = cancellationToken.Register(() =>
            {
                cancelled.TrySetResult();
                never.TrySetCanceled(cancellationToken);
            });
            await never.Task; // only cancellation ends this handler
        }, new SubscriptionOptions { Name = "stuck" });
        var otherDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription other = await _broker.SubscribeAsync<TestEvent>("orders", "#", (_, _) =>
        {
            otherDone.TrySetResult();
            return ValueTask.CompletedTask;
        });

        await _broker.PublishAsync("orders", "created", new TestEvent(1));
        await Task.WhenAll(entered.Task, otherDone.Task).OrHang("both handlers to get the message");

        await stuck.DisposeAsync().OrHang("disposing the stuck handler");

        await cancelled.Task.OrHang("the handler's token to be cancelled");
        await stuck.Completion.OrHang("the stuck subscription to complete");
        SubscriptionSnapshot state = _broker.GetSnapshot().Queue("orders").Subscription("stuck");
        state.Backlog.Should().Be(1, "the cancelled handler threw, so its message was nacked and kept");
        state.Acked.Should().Be(0);
    }
}
