using FluentAssertions;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.ContractTests;

/// <summary>
/// The publisher/subscriber contract, written once and run against every target. Tests never wait
/// for time to pass: when a test must show that nothing else arrives, it publishes a sentinel after
/// the messages under test and reads up to it, which the order guarantee makes conclusive.
/// </summary>
public abstract class BrokerContractTests : IAsyncLifetime
{
    protected const string Sentinel = "sentinel";

    private IBrokerTarget? _target;

    protected IBrokerTarget Target => _target ?? throw new InvalidOperationException("The target is created in InitializeAsync.");

    protected IPublisher Publisher => Target.Publisher;

    protected ISubscriber Subscriber => Target.Subscriber;

    /// <summary>Creates a fresh target for one test.</summary>
    protected abstract ValueTask<IBrokerTarget> CreateTargetAsync();

    public async Task InitializeAsync() => _target = await CreateTargetAsync();

    public async Task DisposeAsync()
    {
        if (_target is not null)
        {
            await _target.DisposeAsync();
        }
    }

    /// <summary>A queue name no other test uses, declared for <see cref="TestEvent"/>.</summary>
    protected async Task<string> NewQueueAsync()
    {
        string queue = "contract-" + Guid.NewGuid().ToString("N");
        await Target.DeclareQueueAsync<TestEvent>(queue);
        return queue;
    }

    protected Task<PublishReceipt> PublishAsync(string queue, string eventName, int number) =>
        Publisher.PublishAsync(queue, eventName, new TestEvent(number)).AsTask();

    protected static async Task<List<Delivery<TestEvent>>> ReadAsync(Subscription<TestEvent> subscription, int count)
    {
        var deliveries = new List<Delivery<TestEvent>>(count);
        for (int i = 0; i < count; i++)
        {
            deliveries.Add(await subscription.ReadAsync().OrHang($"delivery {i + 1} of {count} on {subscription.Queue}"));
        }

        return deliveries;
    }

    /// <summary>
    /// Publishes a sentinel and reads up to it, acking everything; returns what came before it.
    /// The subscription must match <see cref="Sentinel"/>.
    /// </summary>
    protected async Task<List<Delivery<TestEvent>>> DrainUpToSentinelAsync(string queue, Subscription<TestEvent> subscription)
    {
        await PublishAsync(queue, Sentinel, -1);
        var before = new List<Delivery<TestEvent>>();
        while (true)
        {
            Delivery<TestEvent> delivery = await subscription.ReadAsync().OrHang("the sentinel");
            (await delivery.AckAsync()).Should().BeTrue();
            if (delivery.Event == Sentinel)
            {
                return before;
            }

            before.Add(delivery);
        }
    }

    private static SubscriptionOptions Durable(string name, int maxInFlight = 256) => new() { Name = name, MaxInFlight = maxInFlight };

    // ------------------------------------------------------------------ publish and route

    [ContractFact]
    public async Task PublishAsync_MatchingSubscription_DeliversEnvelopeWithReceiptValues()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> subscription = await Subscriber.SubscribeAsync<TestEvent>(queue, "add");

        PublishReceipt receipt = await Publisher.PublishAsync(queue, "add", new TestEvent(7, "seven"), new PublishOptions
        {
            Headers = new Dictionary<string, string> { ["tenant"] = "acme" },
        });

        Delivery<TestEvent> delivery = (await ReadAsync(subscription, 1))[0];
        delivery.Payload.Should().Be(new TestEvent(7, "seven"));
        delivery.Event.Should().Be("add");
        delivery.Attempt.Should().Be(1);
        delivery.Message.Queue.Should().Be(queue);
        delivery.Message.Id.Should().Be(receipt.MessageId).And.NotBe(Guid.Empty);
        delivery.Message.Sequence.Should().Be(receipt.Sequence).And.BePositive();
        delivery.Message.Headers.Should().Contain("tenant", "acme");
        receipt.Queue.Should().Be(queue);
    }

    [ContractFact]
    public async Task PublishAsync_Sequences_IncreaseByOnePerMessageAndIdsAreDistinct()
    {
        string queue = await NewQueueAsync();
        var receipts = new List<PublishReceipt>();
        for (int i = 0; i < 5; i++)
        {
            receipts.Add(await PublishAsync(queue, "add", i));
        }

        receipts.Select(r => r.Sequence).Should().Equal(Enumerable.Range((int)receipts[0].Sequence, 5).Select(i => (long)i));
        receipts.Select(r => r.MessageId).Should().OnlyHaveUniqueItems();
    }

    public static TheoryData<string, string[]> FilterCases() => new()
    {
        // filter           events it must receive, out of AllEvents
        { "add", ["add"] },
        { "*", ["add", "delete"] },
        { "#", ["add", "delete", "ep42.results", "ep7.results", "a.b.c", "orders.eu.created"] },
        { "*.results", ["ep42.results", "ep7.results"] },
        { "ep42.*", ["ep42.results"] },
        { "#.results", ["ep42.results", "ep7.results"] },
        { "orders.#", ["orders.eu.created"] },
        { "orders.*.created", ["orders.eu.created"] },
        { "orders.*", [] },
        { "a.#.c", ["a.b.c"] },
        { "a.*.*", ["a.b.c"] },
        { "*.*.*", ["a.b.c", "orders.eu.created"] },
        { "#.#", ["add", "delete", "ep42.results", "ep7.results", "a.b.c", "orders.eu.created"] },
        { "nothing", [] },
    };

    private static readonly string[] AllEvents = ["add", "delete", "ep42.results", "ep7.results", "a.b.c", "orders.eu.created"];

    [ContractTheory]
    [MemberData(nameof(FilterCases))]
    public async Task SubscribeAsync_Filter_ReceivesExactlyTheMatchingEvents(string filter, string[] expected)
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> subscription = await Subscriber.SubscribeAsync<TestEvent>(queue, [filter, Sentinel]);

        int number = 0;
        foreach (string eventName in AllEvents)
        {
            await PublishAsync(queue, eventName, number++);
        }

        List<Delivery<TestEvent>> received = await DrainUpToSentinelAsync(queue, subscription);
        received.Select(d => d.Event).Should().Equal(expected, $"filter '{filter}' follows AMQP topic rules");
    }

    [ContractFact]
    public async Task SubscribeAsync_SeveralMatchingFilters_DeliversEachMessageOnce()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> subscription = await Subscriber.SubscribeAsync<TestEvent>(queue, ["ep42.results", "*.results", "#", Sentinel]);

        await PublishAsync(queue, "ep42.results", 1);

        List<Delivery<TestEvent>> received = await DrainUpToSentinelAsync(queue, subscription);
        received.Should().ContainSingle().Which.Payload.Number.Should().Be(1);
    }

    [ContractFact]
    [Trait("Guarantee", "1")]
    public async Task PublishAsync_FanOut_EveryMatchingSubscriptionReceivesEveryMessageOnce()
    {
        string queue = await NewQueueAsync();
        var subscriptions = new List<Subscription<TestEvent>>();
        for (int i = 0; i < 4; i++)
        {
            subscriptions.Add(await Subscriber.SubscribeAsync<TestEvent>(queue, ["add", Sentinel]));
        }

        for (int i = 0; i < 20; i++)
        {
            await PublishAsync(queue, "add", i);
        }

        foreach (Subscription<TestEvent> subscription in subscriptions)
        {
            List<Delivery<TestEvent>> received = await DrainUpToSentinelAsync(queue, subscription);
            received.Select(d => d.Payload.Number).Should().Equal(Enumerable.Range(0, 20));
            await subscription.DisposeAsync();
        }
    }

    [ContractFact]
    public async Task SubscribeAsync_Ephemeral_StartsAtMessagesPublishedAfterIt()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> early = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"]);
        await PublishAsync(queue, "add", 1);

        await using Subscription<TestEvent> late = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"]);
        await PublishAsync(queue, "add", 2);

        List<Delivery<TestEvent>> lateReceived = await DrainUpToSentinelAsync(queue, late);
        lateReceived.Select(d => d.Payload.Number).Should().Equal(2);
        List<Delivery<TestEvent>> earlyReceived = await DrainUpToSentinelAsync(queue, early);
        earlyReceived.Select(d => d.Payload.Number).Should().Equal(1, 2);
    }

    // ------------------------------------------------------------------ order

    [ContractFact]
    [Trait("Guarantee", "3")]
    public async Task ReadAsync_ManyMessages_ArriveInPublishOrder()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> subscription = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { MaxInFlight = 16 });

        Task publisher = Task.Run(async () =>
        {
            for (int i = 0; i < 2000; i++)
            {
                await PublishAsync(queue, i % 3 == 0 ? "add" : "update.row", i);
            }
        });

        long lastSequence = 0;
        for (int i = 0; i < 2000; i++)
        {
            Delivery<TestEvent> delivery = await subscription.ReadAsync().OrHang($"message {i}");
            delivery.Payload.Number.Should().Be(i);
            delivery.Message.Sequence.Should().BeGreaterThan(lastSequence);
            lastSequence = delivery.Message.Sequence;
            await delivery.AckAsync();
        }

        await publisher.OrHang("the publisher");
    }

    [ContractFact]
    [Trait("Guarantee", "3")]
    [Trait("Guarantee", "2")]
    public async Task NackAsync_MaxInFlightOne_RedeliversBeforeAnythingNewer()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> subscription = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { MaxInFlight = 1 });
        for (int i = 0; i < 3; i++)
        {
            await PublishAsync(queue, "add", i);
        }

        var seen = new List<(int Number, int Attempt)>();
        for (int i = 0; i < 5; i++)
        {
            Delivery<TestEvent> delivery = (await ReadAsync(subscription, 1))[0];
            seen.Add((delivery.Payload.Number, delivery.Attempt));

            // Nack every first attempt, with no backoff: strict order means each message comes straight back.
            bool settled = delivery.Attempt == 1 && delivery.Payload.Number < 2 ? await delivery.NackAsync(TimeSpan.Zero) : await delivery.AckAsync();
            settled.Should().BeTrue();
        }

        seen.Should().Equal((0, 1), (0, 2), (1, 1), (1, 2), (2, 1));
    }

    // ------------------------------------------------------------------ acks and at-least-once

    [ContractFact]
    [Trait("Guarantee", "2")]
    public async Task AckAsync_SecondAckOfSameDelivery_ReturnsFalseAndChangesNothing()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> subscription = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], Durable("acks"));
        await PublishAsync(queue, "add", 1);
        await PublishAsync(queue, "add", 2);

        List<Delivery<TestEvent>> deliveries = await ReadAsync(subscription, 2);
        (await deliveries[0].AckAsync()).Should().BeTrue();
        (await deliveries[0].AckAsync()).Should().BeFalse("the delivery is no longer pending");
        (await deliveries[0].NackAsync()).Should().BeFalse();
        (await deliveries[0].RejectAsync("late")).Should().BeFalse();

        // The second delivery is untouched by the first one's stale settles.
        (await deliveries[1].AckAsync()).Should().BeTrue();
        (await DrainUpToSentinelAsync(queue, subscription)).Should().BeEmpty();
    }

    [ContractFact]
    [Trait("Guarantee", "2")]
    [Trait("Guarantee", "5")]
    public async Task DisposeAsync_DurableConsumerHoldingUnacked_NextConsumerGetsThemWithAttemptIncreased()
    {
        string queue = await NewQueueAsync();
        Subscription<TestEvent> first = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], Durable("worker"));
        for (int i = 0; i < 3; i++)
        {
            await PublishAsync(queue, "add", i);
        }

        List<Delivery<TestEvent>> read = await ReadAsync(first, 3);
        await read[1].AckAsync();
        await first.DisposeAsync();

        (await read[0].AckAsync()).Should().BeFalse("the consumer detached and the message went back");

        await using Subscription<TestEvent> second = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], Durable("worker"));
        List<Delivery<TestEvent>> again = await DrainUpToSentinelAsync(queue, second);
        again.Select(d => (d.Payload.Number, d.Attempt)).Should().Equal((0, 2), (2, 2));
    }

    /// <summary>
    /// The durable subscription "audit" (add, delete) gets messages 0 to 3; its consumer reads 0 and 1, acks 0, and
    /// leaves with 1 in flight and unacked, and 2 and 3 delivered but never read. Then 4 to 7 are published (add,
    /// delete alternately) while no consumer is attached.
    /// </summary>
    private async Task LeaveAuditHoldingOneUnackedAsync(string queue)
    {
        Subscription<TestEvent> consumer = await Subscriber.SubscribeAsync<TestEvent>(queue, ["add", "delete", Sentinel], Durable("audit"));
        for (int i = 0; i < 4; i++)
        {
            await PublishAsync(queue, "add", i);
        }

        List<Delivery<TestEvent>> read = await ReadAsync(consumer, 2);
        await read[0].AckAsync();
        await consumer.DisposeAsync();
        for (int i = 4; i < 8; i++)
        {
            await PublishAsync(queue, i % 2 == 0 ? "add" : "delete", i);
        }
    }

    [ContractFact]
    [Trait("Guarantee", "5")]
    [Trait("Guarantee", "3")]
    public async Task SubscribeAsync_DurableReattach_CatchesUpOnEverythingInOrder_ReadAndUnackedAsARedelivery()
    {
        string queue = await NewQueueAsync();
        await LeaveAuditHoldingOneUnackedAsync(queue);

        await using Subscription<TestEvent> back = await Subscriber.SubscribeAsync<TestEvent>(queue, ["add", "delete", Sentinel], Durable("audit"));
        List<Delivery<TestEvent>> caughtUp = await DrainUpToSentinelAsync(queue, back);
        caughtUp.Select(d => d.Payload.Number).Should().Equal([1, 2, 3, 4, 5, 6, 7], "nothing is lost or repeated, and the order is kept");
        caughtUp.Select(d => d.Message.Sequence).Should().BeInAscendingOrder();
        caughtUp[0].Attempt.Should().Be(2, "message 1 was read and not acked: it comes back as a redelivery");
        caughtUp.Skip(3).Select(d => d.Attempt).Should().AllBeEquivalentTo(1, "messages 4 to 7 were published while no consumer was attached");
    }

    [ContractFact]
    [Trait("Guarantee", "5")]
    [Trait("Guarantee", "3")]
    [RequiresCapability(ContractCapability.UnreadDeliveriesKeepTheirAttempt)]
    public async Task SubscribeAsync_DurableReattach_GetsInFlightFirstThenEverythingMissedInOrder()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> other = await Subscriber.SubscribeAsync<TestEvent>(queue, ["add", Sentinel]);
        await LeaveAuditHoldingOneUnackedAsync(queue);
        await PublishAsync(queue, "update", 100); // matches nothing of the durable subscription

        await using Subscription<TestEvent> back = await Subscriber.SubscribeAsync<TestEvent>(queue, ["add", "delete", Sentinel], Durable("audit"));
        List<Delivery<TestEvent>> caughtUp = await DrainUpToSentinelAsync(queue, back);
        caughtUp.Select(d => (d.Payload.Number, d.Attempt)).Should().Equal(
            [(1, 2), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1)],
            "what was read and unacked comes back as a redelivery, what was never read keeps its attempt");
        caughtUp.Select(d => d.Message.Sequence).Should().BeInAscendingOrder();

        // The other subscription was unaffected by the disconnect.
        (await DrainUpToSentinelAsync(queue, other)).Select(d => d.Payload.Number).Should().Equal(0, 1, 2, 3, 4, 6);
    }

    [ContractFact]
    [Trait("Guarantee", "2")]
    public async Task AutoAck_ReadThenDetach_MessageIsNotDeliveredAgain()
    {
        string queue = await NewQueueAsync();
        Subscription<TestEvent> consumer = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { Name = "auto", AutoAck = true });
        await PublishAsync(queue, "add", 1);
        await PublishAsync(queue, "add", 2);

        Delivery<TestEvent> delivery = (await ReadAsync(consumer, 1))[0];
        delivery.Payload.Number.Should().Be(1);
        (await delivery.AckAsync()).Should().BeFalse("auto-ack settled it when it was read");
        await consumer.DisposeAsync();

        await using Subscription<TestEvent> back = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { Name = "auto" });
        List<Delivery<TestEvent>> rest = await DrainUpToSentinelAsync(queue, back);
        rest.Select(d => d.Payload.Number).Should().Equal([2], "auto-ack is at-most-once: message 1 was read, so it is gone");
    }

    // ------------------------------------------------------------------ bounds

    [ContractFact]
    [Trait("Guarantee", "4")]
    public async Task ReadAsync_ConsumerThatNeverAcks_HoldsAtMostMaxInFlight()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> subscription = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { Name = "slow", MaxInFlight = 3 });
        for (int i = 0; i < 10; i++)
        {
            await PublishAsync(queue, "add", i);
        }

        List<Delivery<TestEvent>> held = await ReadAsync(subscription, 3);
        held.Select(d => d.Payload.Number).Should().Equal(0, 1, 2);

        Task<Delivery<TestEvent>> fourth = subscription.ReadAsync().AsTask();
        fourth.IsCompleted.Should().BeFalse("three deliveries are unsettled and MaxInFlight is 3");

        await held[0].AckAsync();
        (await fourth.OrHang("the delivery after an ack freed credit")).Payload.Number.Should().Be(3);
    }

    // ------------------------------------------------------------------ dead letters

    [ContractFact]
    [Trait("Guarantee", "1")]
    public async Task RejectAsync_Message_GoesToDeadLetterQueueWithReasonAndSource()
    {
        string queue = await NewQueueAsync();
        string deadLetters = Broker.GetDeadLetterQueueName(queue);
        await using Subscription<TestEvent> dlq = await Subscriber.SubscribeAsync<TestEvent>(deadLetters, ["#"]);
        await using Subscription<TestEvent> subscription = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], Durable("picky"));
        PublishReceipt receipt = await PublishAsync(queue, "orders.created", 9);

        Delivery<TestEvent> delivery = (await ReadAsync(subscription, 1))[0];
        (await delivery.RejectAsync("price is negative")).Should().BeTrue();

        Delivery<TestEvent> dead = (await ReadAsync(dlq, 1))[0];
        dead.Payload.Should().Be(new TestEvent(9));
        dead.Event.Should().Be("orders.created");
        dead.Message.Id.Should().Be(receipt.MessageId);
        dead.Message.Queue.Should().Be(deadLetters);
        dead.Message.Headers.Should().Contain(MessageHeaders.DeadLetterReason, DeadLetterReasons.Rejected)
            .And.Contain(MessageHeaders.DeadLetterDetail, "price is negative")
            .And.Contain(MessageHeaders.SourceQueue, queue)
            .And.Contain(MessageHeaders.SourceSubscription, "picky")
            .And.Contain(MessageHeaders.Attempts, "1")
            .And.Contain(MessageHeaders.SourceSequence, receipt.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture));

        (await DrainUpToSentinelAsync(queue, subscription)).Should().BeEmpty("a rejected message does not come back");
    }

    // ------------------------------------------------------------------ handlers

    [ContractFact]
    public async Task SubscribeAsync_HandlerReturns_EachMessageAckedOnceInOrder()
    {
        string queue = await NewQueueAsync();
        var seen = new List<int>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription handler = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], (delivery, _) =>
        {
            seen.Add(delivery.Payload.Number);
            if (seen.Count == 10)
            {
                done.TrySetResult();
            }

            return ValueTask.CompletedTask;
        }, new SubscriptionOptions { Name = "handled" });

        for (int i = 0; i < 10; i++)
        {
            await PublishAsync(queue, "add", i);
        }

        await done.Task.OrHang("ten handler calls");
        await handler.DisposeAsync();
        seen.Should().Equal(Enumerable.Range(0, 10));

        // Acked: a new consumer on the durable subscription finds nothing left.
        await using Subscription<TestEvent> check = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { Name = "handled" });
        (await DrainUpToSentinelAsync(queue, check)).Should().BeEmpty();
    }

    [ContractFact]
    [Trait("Guarantee", "2")]
    public async Task SubscribeAsync_HandlerThrows_MessageIsDeliveredAgainWithNextAttempt()
    {
        string queue = await NewQueueAsync();
        var attempts = new List<(int Number, int Attempt)>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription handler = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], (delivery, _) =>
        {
            attempts.Add((delivery.Payload.Number, delivery.Attempt));
            if (delivery.Payload.Number == 1 && delivery.Attempt < 3)
            {
                throw new InvalidOperationException("transient failure");
            }

            if (delivery.Payload.Number == 2)
            {
                done.TrySetResult();
            }

            return ValueTask.CompletedTask;
        }, new SubscriptionOptions { MaxInFlight = 1, RedeliveryDelays = [] }); // no backoff: retry at once

        await PublishAsync(queue, "add", 1);
        await PublishAsync(queue, "add", 2);

        await done.Task.OrHang("the handler to get past the failing message");
        attempts.Should().Equal((1, 1), (1, 2), (1, 3), (2, 1));
    }

    // ------------------------------------------------------------------ clients

    [ContractFact]
    public async Task ClientDisposeAsync_DetachesItsSubscriptionsAndCompletesThem()
    {
        string queue = await NewQueueAsync();
        IClientTarget client = await Target.ConnectAsync("worker");
        Subscription<TestEvent> durable = await client.Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], Durable("jobs"));
        Subscription<TestEvent> ephemeral = await client.Subscriber.SubscribeAsync<TestEvent>(queue, ["#"]);
        await client.Publisher.PublishAsync(queue, "add", new TestEvent(1));
        Delivery<TestEvent> held = (await ReadAsync(durable, 1))[0];

        await client.DisposeAsync();

        await durable.Completion.OrHang("the durable subscription to complete");
        await ephemeral.Completion.OrHang("the ephemeral subscription to complete");
        (await held.AckAsync()).Should().BeFalse();

        await using Subscription<TestEvent> back = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], Durable("jobs"));
        (await DrainUpToSentinelAsync(queue, back)).Select(d => (d.Payload.Number, d.Attempt)).Should().Equal((1, 2));
    }

    // ------------------------------------------------------------------ competing consumers

    [ContractFact]
    [Trait("Guarantee", "2")]
    public async Task SubscribeAsync_TwoConsumersOnOneDurableSubscription_EachMessageGoesToExactlyOne()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> a = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], Durable("pool", maxInFlight: 4));
        await using Subscription<TestEvent> b = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"], Durable("pool", maxInFlight: 4));
        const int count = 200;

        var received = new System.Collections.Concurrent.ConcurrentBag<int>();
        int acked = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task DrainAsync(Subscription<TestEvent> subscription)
        {
            await foreach (Delivery<TestEvent> delivery in subscription.ReadAllAsync())
            {
                received.Add(delivery.Payload.Number);
                (await delivery.AckAsync()).Should().BeTrue();

                // Counted once acked, not once received: the consumers are disposed on this signal, and an ack of the
                // other reader still under way would find its delivery taken back.
                if (Interlocked.Increment(ref acked) == count)
                {
                    done.TrySetResult();
                }
            }
        }

        Task readers = Task.WhenAll(Task.Run(() => DrainAsync(a)), Task.Run(() => DrainAsync(b)));
        for (int i = 0; i < count; i++)
        {
            await PublishAsync(queue, "add", i);
        }

        // A reader that failed its assertion ends the wait too: awaiting the readers below then fails with its message.
        await Task.WhenAny(done.Task, readers).OrHang($"{count} deliveries acked across two consumers");
        await a.DisposeAsync();
        await b.DisposeAsync();
        await readers.OrHang("the readers to finish");
        received.Should().BeEquivalentTo(Enumerable.Range(0, count), "each message goes to exactly one consumer");
    }

    // ------------------------------------------------------------------ cancellation

    [ContractFact]
    public async Task ReadAsync_CancelledWhileWaiting_ThrowsAndTheNextMessageStillArrives()
    {
        string queue = await NewQueueAsync();
        await using Subscription<TestEvent> subscription = await Subscriber.SubscribeAsync<TestEvent>(queue, ["#"]);
        using var cancellation = new CancellationTokenSource();

        Task<Delivery<TestEvent>> waiting = subscription.ReadAsync(cancellation.Token).AsTask();
        await cancellation.CancelAsync();

        await FluentActions.Awaiting(() => waiting).Should().ThrowAsync<OperationCanceledException>();
        await PublishAsync(queue, "add", 5);
        (await ReadAsync(subscription, 1))[0].Payload.Number.Should().Be(5);
    }
}
