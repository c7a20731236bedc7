using System.Threading.Channels;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests.Subscriptions;

/// <summary>Durable and ephemeral subscriptions over their whole life: attach, detach, delete, and the end of reading.</summary>
public sealed class SubscriptionLifecycleTests : IAsyncLifetime
{
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        _broker = new Broker();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    [Trait("Guarantee", "5")]
    public async Task DurableSubscription_NoConsumerAttached_KeepsCollectingItsBacklog()
    {
        Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("db", "#", new SubscriptionOptions { Name = "audit" });
        await consumer.DisposeAsync();

        for (int i = 0; i < 7; i++)
        {
            await _broker.PublishAsync("db", "add", new TestEvent(i));
        }

        SubscriptionSnapshot audit = _broker.GetSnapshot().Queue("db").Subscription("audit");
        audit.Consumers.Should().Be(0);
        audit.Backlog.Should().Be(7);
        _broker.GetSnapshot().Queue("db").Depth.Should().Be(7);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task EphemeralSubscription_ConsumerLeavesHoldingMessages_ReleasesThemAsAbandonedAndFreesRoom()
    {
        _broker.DeclareQueue<TestEvent>("db", new QueueOptions { MaxMessages = 3 });
        Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("db", "#", new SubscriptionOptions { MaxInFlight = 1 });
        for (int i = 0; i < 3; i++)
        {
            await _broker.PublishAsync("db", "add", new TestEvent(i));
        }

        await consumer.ReadAsync();
        Task<PublishReceipt> waiting = _broker.PublishAsync("db", "add", new TestEvent(3)).AsTask();

        await consumer.DisposeAsync();

        QueueSnapshot queue = _broker.GetSnapshot().Queue("db");
        queue.Abandoned.Should().Be(3, "one in flight and two waiting were let go with their subscription");
        queue.Subscriptions.Should().BeEmpty();
        (await waiting.OrHang("the waiting publisher, once the room was freed")).Sequence.Should().Be(4);
        _broker.GetSnapshot().Queue("db").Unrouted.Should().Be(1, "by the time it got room, nobody was subscribed");
        _broker.GetSnapshot().Queue("db").Depth.Should().Be(0);
    }

    [Fact]
    public async Task DeleteSubscriptionAsync_NoConsumers_RemovesItAndReleasesWhatItHeld()
    {
        Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("db", "#", new SubscriptionOptions { Name = "gone" });
        await consumer.DisposeAsync();
        await _broker.PublishAsync("db", "add", new TestEvent(1));
        await _broker.PublishAsync("db", "add", new TestEvent(2));

        (await _broker.DeleteSubscriptionAsync("db", "gone")).Should().BeTrue();
        (await _broker.DeleteSubscriptionAsync("db", "gone")).Should().BeFalse("it no longer exists");

        QueueSnapshot queue = _broker.GetSnapshot().Queue("db");
        queue.Subscriptions.Should().BeEmpty();
        queue.Depth.Should().Be(0);
        queue.Abandoned.Should().Be(2);

        // A new subscription with the same name starts afresh.
        await using Subscription<TestEvent> again = await _broker.SubscribeAsync<TestEvent>("db", "other", new SubscriptionOptions { Name = "gone" });
        await _broker.PublishAsync("db", "other", new TestEvent(3));
        (await again.ReadAsync()).Payload.Number.Should().Be(3);
    }

    [Fact]
    public async Task DeleteSubscriptionAsync_ConsumerAttached_ThrowsAndChangesNothing()
    {
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("db", "#", new SubscriptionOptions { Name = "busy" });
        await _broker.PublishAsync("db", "add", new TestEvent(1));

        InvalidOperationException error = (await FluentActions.Awaiting(async () => await _broker.DeleteSubscriptionAsync("db", "busy"))
            .Should().ThrowAsync<InvalidOperationException>()).Which;
        error.Message.Should().Contain("busy").And.Contain("1 consumer(s) attached").And.Contain("dispose them");

        Delivery<TestEvent> delivery = await consumer.ReadAsync();
        (await delivery.AckAsync()).Should().BeTrue();
    }

    [Fact]
    public async Task SubscribeAsync_DurableNameWithOtherFilters_ThrowsNamingBothFilterSets()
    {
        await using Subscription<TestEvent> first = await _broker.SubscribeAsync<TestEvent>("db", ["add", "update"], new SubscriptionOptions { Name = "same" });

        InvalidOperationException error = (await FluentActions.Awaiting(async () => await _broker.SubscribeAsync<TestEvent>("db", ["delete"], new SubscriptionOptions { Name = "same" }))
            .Should().ThrowAsync<InvalidOperationException>()).Which;
        error.Message.Should().Contain("[add, update]").And.Contain("[delete]");

        // The same filters in another order reattach fine.
        await using Subscription<TestEvent> second = await _broker.SubscribeAsync<TestEvent>("db", ["update", "add"], new SubscriptionOptions { Name = "same" });
        _broker.GetSnapshot().Queue("db").Subscription("same").Consumers.Should().Be(2);
    }

    [Fact]
    public async Task ReadMethods_AfterTheConsumerDetached_BehaveLikeACompletedChannel()
    {
        Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("db", "#");
        await consumer.DisposeAsync();

        consumer.TryRead(out _).Should().BeFalse();
        (await consumer.WaitToReadAsync()).Should().BeFalse();
        await FluentActions.Awaiting(async () => await consumer.ReadAsync()).Should().ThrowAsync<ChannelClosedException>();
        var all = new List<Delivery<TestEvent>>();
        await foreach (Delivery<TestEvent> delivery in consumer.ReadAllAsync())
        {
            all.Add(delivery);
        }

        all.Should().BeEmpty();
    }

    [Fact]
    public void Delivery_Default_SettlingThrowsInvalidOperationExplainingWhy()
    {
        Delivery<TestEvent> delivery = default;

        FluentActions.Awaiting(async () => await delivery.AckAsync()).Should().ThrowAsync<InvalidOperationException>().WithMessage("*default value*");
        FluentActions.Awaiting(async () => await delivery.NackAsync()).Should().ThrowAsync<InvalidOperationException>();
        FluentActions.Awaiting(async () => await delivery.RejectAsync()).Should().ThrowAsync<InvalidOperationException>();
        delivery.ToString().Should().Be("(no delivery)");
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task RejectAsync_FromADeadLetterQueue_DropsTheDeadLetterAndRaisesIt()
    {
        var dropped = new List<MessageDroppedEventArgs>();
        _broker.MessageDropped += (_, e) => dropped.Add(e);
        await using Subscription<TestEvent> dlq = await _broker.SubscribeAsync<TestEvent>("db.$dlq", "#", new SubscriptionOptions { Name = "triage" });
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("db", "#");
        await _broker.PublishAsync("db", "add", new TestEvent(1));
        await (await consumer.ReadAsync()).RejectAsync("first");

        Delivery<TestEvent> dead = await dlq.ReadAsync();
        (await dead.RejectAsync("give up")).Should().BeTrue();

        MessageDroppedEventArgs drop = dropped.Should().ContainSingle().Subject;
        drop.Queue.Should().Be("db.$dlq");
        drop.Subscription.Should().Be("triage");
        drop.Reason.Should().Be(DropReason.DeadLetterDiscarded);
        QueueSnapshot dlqState = _broker.GetSnapshot().Queue("db.$dlq");
        dlqState.Dropped.Should().Be(1);
        dlqState.Subscription("triage").DeadLettered.Should().Be(1);
    }

    [Fact]
    public async Task NackAsync_AfterTheConsumerDetached_ReturnsFalseAndTheMessageComesBackOnce()
    {
        Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("db", "#", new SubscriptionOptions { Name = "once" });
        await _broker.PublishAsync("db", "add", new TestEvent(1));
        Delivery<TestEvent> held = await consumer.ReadAsync();
        await consumer.DisposeAsync();

        (await held.NackAsync()).Should().BeFalse();
        (await held.RejectAsync()).Should().BeFalse();

        SubscriptionSnapshot state = _broker.GetSnapshot().Queue("db").Subscription("once");
        state.Backlog.Should().Be(1, "returned exactly once, by the detach");
        state.DeadLettered.Should().Be(0);
    }

    [Fact]
    public async Task ClientDisposeAsync_HandlerRunning_CancelsItsTokenAndWaitsForItToReturn()
    {
        // Disposed again at the end whatever happens: only the client's dispose (or the broker's, after its
        // shutdown timeout) cancels the handler's token, which is all the handler waits for.
        await using BrokerClient client = _broker.Connect("handler-owner");
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool returned = false;
        Subscription subscription = await client.SubscribeAsync<TestEvent>("db", "#", async (_, cancellationToken) =>
        {
            entered.TrySetResult();
            var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using (cancellationToken.Register(() => stopped.TrySetResult()))
            {
                await stopped.Task;
            }

            returned = true;
        }, new SubscriptionOptions { Name = "owned" });
        await _broker.PublishAsync("db", "add", new TestEvent(1));
        await entered.Task.OrHang("the handler to start");

        await client.DisposeAsync().OrHang("the client's dispose, which cancels the running handler and waits for it");

        returned.Should().BeTrue("disposing the client waits for its running handlers");
        await subscription.Completion.OrHang("the handler subscription to complete");
        SubscriptionSnapshot owned = _broker.GetSnapshot().Queue("db").Subscription("owned");
        owned.Consumers.Should().Be(0);
        (owned.Backlog + owned.Acked).Should().Be(1, "the message was either acked by the handler or kept for the next consumer");
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task DisposeAsync_HandlerEndsInItsCancellation_OnTheLastAttempt_MessageGoesBackWithoutUsingAnAttempt()
    {
        // The dispose cancels the handler's token; the handler ends with OperationCanceledException. That is the
        // dispose's doing, not the message's: no nack, no failure counted, and the last attempt is not used up.
        using var gate = new TestGate("the handler, on its only attempt");
        Subscription handler = await _broker.SubscribeAsync<TestEvent>("db", "#", async (_, cancellationToken) =>
        {
            await gate.PassAsync(cancellationToken);
        }, new SubscriptionOptions { Name = "cut", MaxDeliveries = 1 });
        await _broker.PublishAsync("db", "add", new TestEvent(1));
        await gate.WaitForInside(1).OrHang("the handler to start on the message");

        await handler.DisposeAsync().OrHang("the dispose, which cancels the handler and waits for it");

        SubscriptionSnapshot cut = _broker.GetSnapshot().Queue("db").Subscription("cut");
        cut.Consumers.Should().Be(0);
        cut.Backlog.Should().Be(1, "the message went back to the durable subscription");
        cut.HandlerFailures.Should().Be(0, "a dispose is not the handler's failure");
        cut.DeadLettered.Should().Be(0, "the only attempt was not used up");
        await using Subscription<TestEvent> again = await _broker.SubscribeAsync<TestEvent>("db", "#", new SubscriptionOptions { Name = "cut", MaxDeliveries = 1 });
        Delivery<TestEvent> redelivered = await again.ReadAsync().AsTask().OrHang("the redelivery");
        redelivered.Payload.Number.Should().Be(1);
        redelivered.Attempt.Should().Be(1, "the cut-short delivery did not count as an attempt");
    }

    // ------------------------------------------------------------------ regressions found in review

    [Fact]
    [Trait("Guarantee", "3")]
    [Trait("Guarantee", "5")]
    public async Task DisposeAsync_WhileAReaderIsParked_ReattachedConsumerStillGetsMessagesInOrder()
    {
        // A reader parked in ReadAsync when a message arrives must not carry that message off while
        // its consumer detaches: the message has to be back in the subscription, first in line.
        for (int round = 0; round < 200; round++)
        {
            string queue = "parked" + round;
            Subscription<TestEvent> first = await _broker.SubscribeAsync<TestEvent>(queue, "#", new SubscriptionOptions { Name = "d", MaxInFlight = 1 });
            Task<Delivery<TestEvent>> parked = first.ReadAsync().AsTask();
            await _broker.PublishAsync(queue, "e", new TestEvent(1));
            await first.DisposeAsync();
            await _broker.PublishAsync(queue, "e", new TestEvent(2));

            await using Subscription<TestEvent> second = await _broker.SubscribeAsync<TestEvent>(queue, "#", new SubscriptionOptions { Name = "d", MaxInFlight = 1 });
            try
            {
                Delivery<TestEvent> parkedDelivery = await parked.OrHang("the parked read to finish");
                (await parkedDelivery.AckAsync()).Should().BeFalse("if the parked read got it in time, its consumer has detached since");
            }
            catch (System.Threading.Channels.ChannelClosedException)
            {
                // The usual outcome: the read ends because its consumer detached.
            }

            Delivery<TestEvent> next = await second.ReadAsync().OrHang("the reattached consumer's first delivery");
            next.Payload.Number.Should().Be(1, $"message 1 comes before message 2 (round {round})");
            await next.AckAsync();
            (await second.ReadAsync().OrHang("the second delivery")).Payload.Number.Should().Be(2);
        }
    }

    [Fact]
    public async Task HandlerDisposingItsOwnSubscription_DoesNotWaitForItselfAndAcksItsMessage()
    {
        var subscription = new TaskCompletionSource<Subscription>(TaskCreationOptions.RunContinuationsAsynchronously);
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Subscription handler = await _broker.SubscribeAsync<TestEvent>("db", "#", async (_, _) =>
        {
            await (await subscription.Task).DisposeAsync();
            disposed.TrySetResult();
        }, new SubscriptionOptions { Name = "self" });
        subscription.TrySetResult(handler);

        await _broker.PublishAsync("db", "add", new TestEvent(1));

        await disposed.Task.OrHang("the handler's own DisposeAsync to return");
        await handler.Completion.OrHang("the subscription to complete");
        SubscriptionSnapshot self = _broker.GetSnapshot().Queue("db").Subscription("self");
        self.Consumers.Should().Be(0);
        self.Acked.Should().Be(1, "the handler returned normally, so its delivery was acked before the detach");
    }

    [Fact]
    public async Task HandlerDisposingItsClient_DoesNotWaitForItself()
    {
        BrokerClient client = _broker.Connect("self-client");
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.SubscribeAsync<TestEvent>("db", "#", async (_, _) =>
        {
            await client.DisposeAsync();
            disposed.TrySetResult();
        });

        await _broker.PublishAsync("db", "add", new TestEvent(1));

        await disposed.Task.OrHang("the client's DisposeAsync called from its own handler");
        _broker.GetSnapshot().Clients.Select(c => c.Name).Should().NotContain("self-client");
    }

    [Fact]
    [Trait("Guarantee", "2")]
    public async Task ReadAsync_ParkedWhileItsConsumerHoldsMostOfItsCredit_OneAckBringsTheNextMessage()
    {
        // Settles refill from the backlog in batches, but never while a reader waits for more.
        await using Subscription<TestEvent> consumer = await _broker.SubscribeAsync<TestEvent>("db", "#", new SubscriptionOptions { MaxInFlight = 64 });
        for (int i = 0; i < 65; i++)
        {
            await _broker.PublishAsync("db", "add", new TestEvent(i));
        }

        var held = new List<Delivery<TestEvent>>();
        for (int i = 0; i < 64; i++)
        {
            held.Add(await consumer.ReadAsync());
        }

        Task<Delivery<TestEvent>> parked = consumer.ReadAsync().AsTask();
        parked.IsCompleted.Should().BeFalse("all 64 credits are held");

        await held[0].AckAsync();

        (await parked.OrHang("the 65th message after one ack")).Payload.Number.Should().Be(64);
    }
}
