using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Sqlite.Tests;

/// <summary>
/// Guarantee 7 across restarts of a broker on one SQLite file: what was published and not settled comes back,
/// with its attempts, its dead letters, its held messages and its deduplication window.
/// </summary>
[Trait("Guarantee", "7")]
public sealed class DurableBrokerTests : IDisposable
{
    private readonly TempStoreFile _file = new();
    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2026, 11, 21, 9, 0, 0, TimeSpan.Zero));

    public void Dispose() => _file.Dispose();

    private Broker Start(Durability durability = Durability.Committed) => new(new BrokerOptions
    {
        Store = new SqliteMessageStore(_file.Path),
        Durability = durability,
        TimeProvider = _clock,
        ShutdownTimeout = TimeSpan.Zero,
    });

    private static SubscriptionOptions Worker => new() { Name = "worker", RedeliveryDelays = [TimeSpan.Zero] };

    private static async Task<List<Delivery<TestEvent>>> ReadAsync(Subscription<TestEvent> subscription, int count)
    {
        var deliveries = new List<Delivery<TestEvent>>();
        for (int i = 0; i < count; i++)
        {
            deliveries.Add(await subscription.ReadAsync().OrHang($"delivery {i}"));
        }

        return deliveries;
    }

    [Theory]
    [InlineData(Durability.Committed)]
    [InlineData(Durability.Fsync)]
    public async Task Published_NotYetRead_ComeBackAfterRestartInOrder_AndAckedOnesDoNot(Durability durability)
    {
        var receipts = new List<PublishReceipt>();
        await using (Broker broker = Start(durability))
        {
            await (await broker.SubscribeAsync<TestEvent>("orders", "#", Worker)).DisposeAsync();
            for (int i = 1; i <= 5; i++)
            {
                receipts.Add(await broker.PublishAsync("orders", "order.created", new TestEvent(i)));
            }
        }

        await using (Broker broker = Start(durability))
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            List<Delivery<TestEvent>> deliveries = await ReadAsync(worker, 5);
            deliveries.Select(d => (d.Payload.Number, d.Message.Id, d.Message.Sequence, d.Attempt))
                .Should().Equal(receipts.Select((r, i) => (i + 1, r.MessageId, r.Sequence, 1)));
            foreach (Delivery<TestEvent> delivery in deliveries.Take(3))
            {
                await delivery.AckAsync();
            }
        }

        await using (Broker broker = Start(durability))
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            List<Delivery<TestEvent>> again = await ReadAsync(worker, 2);
            again.Select(d => (d.Payload.Number, d.Attempt)).Should().Equal([(4, 2), (5, 2)], "read once before the restart, never acked");
            worker.TryRead(out _).Should().BeFalse("the three acked messages are gone for good");
            (await broker.PublishAsync("orders", "order.created", new TestEvent(6))).Sequence.Should().Be(6, "sequences continue, never reused");
        }
    }

    [Theory]
    [InlineData(Durability.Committed)]
    [InlineData(Durability.Fsync)]
    public async Task SequencesOfPublishesThatMatchedNoSubscription_AreNeverHandedOutAgainAfterARestart(Durability durability)
    {
        var receipts = new List<PublishReceipt>();
        await using (Broker broker = Start(durability))
        {
            await (await broker.SubscribeAsync<TestEvent>("orders", "a", Worker)).DisposeAsync();
            receipts.Add(await broker.PublishAsync("orders", "a", new TestEvent(1)));
            for (int i = 2; i <= 4; i++)
            {
                // Matches no subscription: nothing is kept, but the receipt's sequence is taken for good.
                receipts.Add(await broker.PublishAsync("orders", "b", new TestEvent(i)));
            }
        }

        receipts.Select(r => r.Sequence).Should().Equal(1, 2, 3, 4);
        await using (Broker broker = Start(durability))
        {
            (await broker.PublishAsync("orders", "a", new TestEvent(5))).Sequence.Should().Be(5, "sequences 2 to 4 were handed out before the restart");
            (await broker.PublishAsync("orders", "b", new TestEvent(6))).Sequence.Should().Be(6);
            broker.GetSnapshot().Queues.Single(q => q.Name == "orders").Unrouted.Should().Be(1, "the unrouted publish since this start");
        }

        await using (Broker broker = Start(durability))
        {
            (await broker.PublishAsync("orders", "b", new TestEvent(7))).Sequence.Should().Be(7, "the last sequence, taken by an unrouted publish, was stored too");
        }
    }

    [Fact]
    public async Task AHandlerCutShortByItsSubscriptionsDisposal_UsesNoAttempt_AcrossARestart()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (Broker broker = Start())
        {
            Subscription handler = await broker.SubscribeAsync<TestEvent>("orders", "#", async (delivery, cancellationToken) =>
            {
                started.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken); // ends only when the disposal cancels it
            }, new SubscriptionOptions { Name = "worker", MaxDeliveries = 1 });
            await broker.PublishAsync("orders", "order.created", new TestEvent(1));
            await started.Task.OrHang("the handler's start");

            // A later publish commits the subscription's cursor with it: message 1 was read for the first time.
            await broker.PublishAsync("orders", "order.created", new TestEvent(2));

            // Cut short by the disposal, not failed: the delivery goes back without using up its one attempt.
            await handler.DisposeAsync().OrHang("the disposal");
        }

        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "worker", MaxDeliveries = 1 });
            Delivery<TestEvent> again = await worker.ReadAsync().OrHang("the message after the restart");
            (again.Payload.Number, again.Attempt).Should().Be((1, 1), "the cut-short delivery used no attempt, so its one attempt is still to come");
            Delivery<TestEvent> next = await worker.ReadAsync().OrHang("the message published while the handler ran");
            (next.Payload.Number, next.Attempt).Should().Be((2, 1), "it was never read");
            broker.GetSnapshot().Queue("orders.$dlq").Depth.Should().Be(0);
        }
    }

    [Fact]
    public async Task AttemptCounts_AreKeptAcrossARestart()
    {
        await using (Broker broker = Start())
        {
            Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            await broker.PublishAsync("orders", "e", new TestEvent(1));
            await (await worker.ReadAsync().OrHang("the first delivery")).NackAsync();
            (await worker.ReadAsync().OrHang("the redelivery")).Attempt.Should().Be(2);
        }

        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            Delivery<TestEvent> delivery = await worker.ReadAsync().OrHang("after the restart");
            delivery.Attempt.Should().Be(3);
            await delivery.AckAsync();
        }
    }

    [Fact]
    public async Task Snapshot_AfterARestart_LastSequenceCarriesOn_AndPublishedCountsOnlyThisBrokersPublishes()
    {
        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            for (int i = 1; i <= 3; i++)
            {
                await broker.PublishAsync("orders", "e", new TestEvent(i));
            }

            QueueSnapshot first = broker.GetSnapshot().Queue("orders");
            (first.Published, first.LastSequence).Should().Be((3L, 3L));
        }

        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            QueueSnapshot recovered = broker.GetSnapshot().Queue("orders");
            (recovered.Published, recovered.LastSequence).Should().Be((0L, 3L), "nothing was published since this broker started");

            await broker.PublishAsync("orders", "e", new TestEvent(4));
            await broker.PublishAsync("orders", "e", new TestEvent(5));

            QueueSnapshot after = broker.GetSnapshot().Queue("orders");
            (after.Published, after.LastSequence).Should().Be((2L, 5L), "sequences carry on from the store, the count is this broker's");
        }
    }

    [Fact]
    public async Task FanOut_OneSubscriptionAcked_OnlyTheOtherGetsItAfterRestart()
    {
        await using (Broker broker = Start())
        {
            Subscription<TestEvent> billing = await broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "billing" });
            await (await broker.SubscribeAsync<TestEvent>("orders", "order.*", new SubscriptionOptions { Name = "audit" })).DisposeAsync();
            await broker.PublishAsync("orders", "order.created", new TestEvent(1));
            await (await billing.ReadAsync().OrHang("billing's copy")).AckAsync();
        }

        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> billing = await broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "billing" });
            await using Subscription<TestEvent> audit = await broker.SubscribeAsync<TestEvent>("orders", "order.*", new SubscriptionOptions { Name = "audit" });
            (await audit.ReadAsync().OrHang("audit's copy")).Payload.Number.Should().Be(1);
            billing.TryRead(out _).Should().BeFalse("billing acked it before the restart");
        }
    }

    [Fact]
    public async Task DeadLetters_SurviveARestart_WithTheirReasonAndHistory_AndCanBeReplayed()
    {
        await using (Broker broker = Start())
        {
            Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            await broker.PublishAsync("orders", "order.created", new TestEvent(7));
            await (await worker.ReadAsync().OrHang("the message to reject")).RejectAsync("bad address");
        }

        await using (Broker broker = Start())
        {
            broker.DeclareQueue<TestEvent>("orders");
            await using (Subscription<TestEvent> dlq = await broker.SubscribeAsync<TestEvent>("orders.$dlq", "#", new SubscriptionOptions { StartAt = StartPosition.All }))
            {
                Delivery<TestEvent> deadLetter = await dlq.ReadAsync().OrHang("the dead letter");
                deadLetter.Message.Headers.Should().Contain(MessageHeaders.DeadLetterReason, DeadLetterReasons.Rejected)
                    .And.Contain(MessageHeaders.DeadLetterDetail, "bad address")
                    .And.Contain(MessageHeaders.SourceSubscription, "worker");
                await deadLetter.AckAsync();
            }

            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            (await broker.ReplayDeadLettersAsync("orders")).Should().Be(1);
            Delivery<TestEvent> replayed = await worker.ReadAsync().OrHang("the replay");
            replayed.Payload.Number.Should().Be(7);
            await replayed.AckAsync();
        }

        await using (Broker broker = Start())
        {
            broker.DeclareQueue<TestEvent>("orders");
            BrokerSnapshot snapshot = broker.GetSnapshot();
            (snapshot.Queue("orders").Depth, snapshot.Queue("orders.$dlq").Depth).Should().Be((0, 0), "the replayed dead letter left the dead-letter queue, in the store too");
        }
    }

    [Fact]
    public async Task DelayedMessage_HeldAcrossARestart_IsDeliveredWhenDue()
    {
        await using (Broker broker = Start())
        {
            await (await broker.SubscribeAsync<TestEvent>("orders", "#", Worker)).DisposeAsync();
            PublishReceipt held = await broker.PublishAsync("orders", "reminder", new TestEvent(1), new PublishOptions { DeliverAfter = TimeSpan.FromMinutes(10) });
            held.Sequence.Should().Be(0);
        }

        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            worker.TryRead(out _).Should().BeFalse("not due yet");
            _clock.Advance(TimeSpan.FromMinutes(10));
            Delivery<TestEvent> due = await worker.ReadAsync().OrHang("the held message");
            due.Event.Should().Be("reminder");
            await due.AckAsync();
        }

        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            _clock.Advance(TimeSpan.FromHours(1));

            // A message the advance released would be stored and delivered after a commit, so an empty read now proves
            // nothing; one published after the advance comes after it in the queue, so it must be the first to arrive.
            PublishReceipt after = await broker.PublishAsync("orders", "after", new TestEvent(2));
            (await worker.ReadAsync().OrHang("the message published after the advance")).Message.Id
                .Should().Be(after.MessageId, "it was delivered and acked; it is held no more");
        }
    }

    [Fact]
    public async Task DeduplicationWindow_SurvivesARestart()
    {
        var options = new QueueOptions { DeduplicationWindow = TimeSpan.FromMinutes(5) };
        var id = Guid.NewGuid();
        PublishReceipt first;
        await using (Broker broker = Start())
        {
            broker.DeclareQueue<TestEvent>("orders", options);
            await (await broker.SubscribeAsync<TestEvent>("orders", "#", Worker)).DisposeAsync();
            first = await broker.PublishAsync("orders", "e", new TestEvent(1), new PublishOptions { MessageId = id });
        }

        await using (Broker broker = Start())
        {
            broker.DeclareQueue<TestEvent>("orders", options);
            (await broker.PublishAsync("orders", "e", new TestEvent(1), new PublishOptions { MessageId = id })).Should().Be(first);
            _clock.Advance(TimeSpan.FromMinutes(5));
            (await broker.PublishAsync("orders", "e", new TestEvent(1), new PublishOptions { MessageId = id })).Sequence.Should().Be(2, "the window passed");
            broker.GetSnapshot().Queue("orders").Depth.Should().Be(2);
        }
    }

    [Fact]
    public async Task TryPublish_OnADurableQueue_ReturnsFalse_BecauseOnlyACommitCompletesIt()
    {
        await using Broker broker = Start();
        await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);

        broker.TryPublish("orders", "e", new TestEvent(1), out _).Should().BeFalse();

        (await broker.PublishAsync("orders", "e", new TestEvent(2))).Sequence.Should().Be(1, "the refused TryPublish took no sequence");
    }

    [Fact]
    public async Task StoredPayload_ReadBackAsAnotherType_FailsTheDeclareClearly_AndTheBrokerKeepsWorking()
    {
        await using (Broker broker = Start())
        {
            await (await broker.SubscribeAsync<TestEvent>("orders", "#", Worker)).DisposeAsync();
            await broker.PublishAsync("orders", "e", new TestEvent(1, "x"));
        }

        await using (Broker broker = Start())
        {
            FluentActions.Invoking(() => broker.DeclareQueue<int>("orders"))
                .Should().Throw<MessageStoreException>().WithMessage("*cannot be read as Int32*Declare the queue with the payload type*");
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            (await worker.ReadAsync().OrHang("the message, read as its own type")).Payload.Should().Be(new TestEvent(1, "x"));
        }
    }

    [Fact]
    public async Task DurableQueue_WithoutAStore_IsRefusedWithWhatToDo()
    {
        await using var broker = new Broker();

        FluentActions.Invoking(() => broker.DeclareQueue<TestEvent>("orders", new QueueOptions { Durability = Durability.Fsync }))
            .Should().Throw<ArgumentException>().WithMessage("*has no store*Set BrokerOptions.Store*");
    }

    [Fact]
    public async Task SecondBrokerOnTheSameFile_FailsAtOnce()
    {
        await using Broker first = Start();

        FluentActions.Invoking(() => Start()).Should().Throw<MessageStoreException>().WithMessage("*in use by another broker*");
        (await first.PublishAsync("orders", "e", new TestEvent(1))).Sequence.Should().Be(1);
    }

    [Fact]
    public async Task StoreFull_PublishesFailClearly_NothingUnstoredIsDelivered_AndNobodyHangs()
    {
        var broker = new Broker(new BrokerOptions
        {
            Store = new SqliteMessageStore(new SqliteStoreOptions { Path = _file.Path, MaxFileSize = 96 * 1024 }),
            Durability = Durability.Fsync,
            ShutdownTimeout = TimeSpan.Zero,
        });
        await using (broker)
        {
            broker.DeclareQueue<string>("memo", new QueueOptions { Durability = Durability.InMemory });
            await using Subscription<string> worker = await broker.SubscribeAsync<string>("orders", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 10_000 });
            string big = new('x', 3000);
            var stored = new List<PublishReceipt>();
            MessageStoreException? failure = null;
            for (int i = 0; i < 200 && failure is null; i++)
            {
                try
                {
                    stored.Add(await broker.PublishAsync("orders", "e", big + i));
                }
                catch (MessageStoreException exception)
                {
                    failure = exception;
                }
            }

            failure.Should().NotBeNull("96 KiB cannot hold 200 messages of 3 KB");
            failure!.Message.Should().Contain("is full");
            await FluentActions.Awaiting(async () => await broker.PublishAsync("orders", "e", "after"))
                .Should().ThrowAsync<MessageStoreException>().WithMessage("*failed earlier*");

            var delivered = new List<Guid>();
            while (worker.TryRead(out Delivery<string> delivery))
            {
                delivered.Add(delivery.Message.Id);
            }

            delivered.Should().Equal(stored.Select(r => r.MessageId), "exactly the publishes that were reported stored were delivered");
            (await broker.PublishAsync("memo", "e", "in memory")).Sequence.Should().Be(1, "queues in memory keep working");
        }
    }

    [Fact]
    public async Task StoreFailed_ThenADelayedMessageFallsDue_ItIsAbandonedOnce_AndTheDepthStaysExact()
    {
        var broker = new Broker(new BrokerOptions
        {
            Store = new SqliteMessageStore(new SqliteStoreOptions { Path = _file.Path, MaxFileSize = 96 * 1024 }),
            Durability = Durability.Fsync,
            ShutdownTimeout = TimeSpan.Zero,
            TimeProvider = _clock,
        });
        await using (broker)
        {
            await using Subscription<string> worker = await broker.SubscribeAsync<string>("orders", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 10_000 });
            await broker.PublishAsync("orders", "e", "later", new PublishOptions { DeliverAfter = TimeSpan.FromMinutes(1) });
            string big = new('x', 3000);
            int stored = 0;
            for (int i = 0; i < 200; i++)
            {
                try
                {
                    await broker.PublishAsync("orders", "e", big + i);
                    stored++;
                }
                catch (MessageStoreException)
                {
                    break;
                }
            }

            QueueSnapshot before = broker.GetSnapshot().Queue("orders");
            before.Depth.Should().Be(stored + 1, "the stored messages, and the delayed one");
            before.Scheduled.Should().Be(1);

            _clock.Advance(TimeSpan.FromMinutes(1));

            QueueSnapshot after = broker.GetSnapshot().Queue("orders");
            after.Scheduled.Should().Be(0);
            after.Abandoned.Should().Be(1, "the store failed, so the due message cannot enter the queue; it stays stored for the next start");
            after.Depth.Should().Be(stored, "its one unit of depth is freed once, not twice");
        }
    }

    /// <summary>A serializer of the user's own: four little-endian bytes per number.</summary>
    private sealed class BinaryNumbers : MessageQueue.Persistence.IPayloadSerializer<int>
    {
        public int Deserialized { get; private set; }

        public byte[] Serialize(int payload) => BitConverter.GetBytes(payload);

        public int Deserialize(ReadOnlySpan<byte> data)
        {
            Deserialized++;
            return BitConverter.ToInt32(data);
        }
    }

    [Fact]
    public async Task CustomSerializer_WritesAndReadsThePayloads()
    {
        await using (Broker broker = Start())
        {
            broker.DeclareQueue("numbers", new BinaryNumbers());
            await (await broker.SubscribeAsync<int>("numbers", "#", new SubscriptionOptions { Name = "sum" })).DisposeAsync();
            await broker.PublishAsync("numbers", "n", 41);
            await broker.PublishAsync("numbers", "n", 1);
        }

        var serializer = new BinaryNumbers();
        await using (Broker broker = Start())
        {
            broker.DeclareQueue("numbers", serializer);
            await using Subscription<int> sum = await broker.SubscribeAsync<int>("numbers", "#", new SubscriptionOptions { Name = "sum" });
            List<int> numbers = [(await sum.ReadAsync().OrHang("the first")).Payload, (await sum.ReadAsync().OrHang("the second")).Payload];
            numbers.Should().Equal(41, 1);
            serializer.Deserialized.Should().Be(2, "the queue was rebuilt with the serializer it was declared with");
        }
    }

    [Fact]
    public async Task StoreFailsUnderConcurrentPublishers_EveryWaitingPublisherGetsTheError_NobodyHangs_AndOnlyStoredOnesAreDelivered()
    {
        await using var broker = new Broker(new BrokerOptions
        {
            Store = new SqliteMessageStore(new SqliteStoreOptions { Path = _file.Path, MaxFileSize = 96 * 1024 }),
            ShutdownTimeout = TimeSpan.Zero,
        });
        await using Subscription<string> worker = await broker.SubscribeAsync<string>("orders", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 10_000 });
        string big = new('x', 3000);

        Task<PublishReceipt>[] publishes = [.. Enumerable.Range(0, 100).Select(i => Task.Run(() => broker.PublishAsync("orders", "e", big + i).AsTask()))];
        await Task.WhenAll(publishes.Select(p => p.ContinueWith(_ => { }, TaskScheduler.Default))).OrHang("every publish to finish, one way or the other");

        var stored = publishes.Where(p => p.IsCompletedSuccessfully).Select(p => p.Result.MessageId).ToHashSet();
        var failed = publishes.Where(p => p.IsFaulted).ToList();
        failed.Should().NotBeEmpty("100 messages of 3 KB do not fit in 96 KiB");
        failed.Should().OnlyContain(p => p.Exception!.InnerException is MessageStoreException, "each failed publish says the store failed");
        (stored.Count + failed.Count).Should().Be(100, "no publish is left hanging or cancelled");

        var delivered = new HashSet<Guid>();
        while (worker.TryRead(out Delivery<string> delivery))
        {
            delivered.Add(delivery.Message.Id);
        }

        delivered.Should().BeEquivalentTo(stored, "what was reported stored is delivered, and nothing else");
        broker.GetSnapshot().Queue("orders").Depth.Should().Be(stored.Count, "the failed publishes gave their room back");
    }

    [Fact]
    public async Task Sequences_NeverGoBackAfterARestart_EvenWhenEarlierPublishesRoutedNowhere()
    {
        await using (Broker broker = Start())
        {
            broker.DeclareQueue<TestEvent>("orders");
            for (int i = 0; i < 5; i++)
            {
                await broker.PublishAsync("orders", "e", new TestEvent(i)); // no subscription yet: not stored
            }

            await (await broker.SubscribeAsync<TestEvent>("orders", "#", Worker)).DisposeAsync(); // starts after 5
        }

        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            PublishReceipt receipt = await broker.PublishAsync("orders", "e", new TestEvent(6));

            receipt.Sequence.Should().Be(6);
            (await worker.ReadAsync().OrHang("the message published after the restart")).Message.Id.Should().Be(receipt.MessageId);
        }
    }

    [Fact]
    public async Task HeldMessage_ThatRoutesNowhereWhenDue_IsForgottenByTheStore()
    {
        await using (Broker broker = Start())
        {
            broker.DeclareQueue<TestEvent>("orders");
            await broker.PublishAsync("orders", "later", new TestEvent(1), new PublishOptions { DeliverAfter = TimeSpan.FromMinutes(1) });
            _clock.Advance(TimeSpan.FromMinutes(1));
            await broker.FlushAsync();
            broker.GetSnapshot().Queue("orders").Unrouted.Should().Be(1);
        }

        using var store = new SqliteMessageStore(_file.Path);
        store.Load().Where(q => q.Name == "orders").SelectMany(q => q.Scheduled).Should().BeEmpty("it entered the queue, routed nowhere, and is gone for good");
    }

    [Fact]
    public async Task HeldMessageWithAMessageId_StaysDeduplicatedAcrossARestart()
    {
        var options = new QueueOptions { DeduplicationWindow = TimeSpan.FromHours(1) };
        var id = Guid.NewGuid();
        await using (Broker broker = Start())
        {
            broker.DeclareQueue<TestEvent>("orders", options);
            await (await broker.SubscribeAsync<TestEvent>("orders", "#", Worker)).DisposeAsync();
            await broker.PublishAsync("orders", "later", new TestEvent(1), new PublishOptions { MessageId = id, DeliverAfter = TimeSpan.FromMinutes(5) });
        }

        await using (Broker broker = Start())
        {
            broker.DeclareQueue<TestEvent>("orders", options);
            PublishReceipt retry = await broker.PublishAsync("orders", "later", new TestEvent(1), new PublishOptions { MessageId = id, DeliverAfter = TimeSpan.FromMinutes(5) });
            retry.Should().Be(new PublishReceipt("orders", id, 0), "the held message's id is remembered across the restart");
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", Worker);
            _clock.Advance(TimeSpan.FromMinutes(5));
            (await worker.ReadAsync().OrHang("the held message")).Message.Id.Should().Be(id);

            // A second held message would have entered the queue with the first and be delivered after its own commit,
            // so an empty read now proves nothing; one published now comes after it, so it must be the next to arrive.
            PublishReceipt after = await broker.PublishAsync("orders", "after", new TestEvent(2));
            (await worker.ReadAsync().OrHang("the message published after the held one")).Message.Id
                .Should().Be(after.MessageId, "the retry enqueued nothing");
        }
    }

    [Fact]
    public async Task AfterTheStoreFailed_RejectingAndNackingStillWork_DeadLettersAreDroppedAndCounted()
    {
        var dropped = new List<MessageDroppedEventArgs>();
        var broker = new Broker(new BrokerOptions
        {
            Store = new SqliteMessageStore(new SqliteStoreOptions { Path = _file.Path, MaxFileSize = 96 * 1024 }),
            ShutdownTimeout = TimeSpan.Zero,
        });
        await using (broker)
        {
            var raised = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            broker.MessageDropped += (_, e) =>
            {
                lock (dropped)
                {
                    dropped.Add(e);
                }

                raised.TrySetResult();
            };
            await using Subscription<string> worker = await broker.SubscribeAsync<string>("orders", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 1000 });
            string big = new('x', 3000);
            for (int i = 0; i < 200; i++)
            {
                try
                {
                    await broker.PublishAsync("orders", "e", big + i);
                }
                catch (MessageStoreException)
                {
                    break;
                }
            }

            worker.TryRead(out Delivery<string> first).Should().BeTrue();
            worker.TryRead(out Delivery<string> second).Should().BeTrue();

            (await first.RejectAsync("bad")).Should().BeTrue("settling works in memory even though the store failed");
            (await second.NackAsync(TimeSpan.Zero)).Should().BeTrue();
            await raised.Task.OrHang("the dropped dead letter to be raised");

            lock (dropped)
            {
                dropped.Should().ContainSingle(d => d.Reason == DropReason.DeadLetterDiscarded && d.MessageId == first.Message.Id);
            }

            broker.GetSnapshot().Queue("orders").Dropped.Should().Be(1);
        }
    }
}
