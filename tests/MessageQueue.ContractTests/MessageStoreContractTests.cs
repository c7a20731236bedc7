using FluentAssertions;
using MessageQueue.Persistence;
using Xunit;

namespace MessageQueue.ContractTests;

/// <summary>
/// What every <see cref="IMessageStore"/> must do, written once: the in-memory store and the SQLite store each
/// run it. "Reopen" means what a restart means for the store: a new SQLite store on the same file, or the
/// same in-memory instance.
/// </summary>
[Trait("Guarantee", "7")]
public abstract class MessageStoreContractTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 21, 9, 0, 0, TimeSpan.Zero);
    private IMessageStore? _store;

    protected IMessageStore Store => _store ??= CreateStore();

    /// <summary>Creates an empty store for one test.</summary>
    protected abstract IMessageStore CreateStore();

    /// <summary>Closes the store and opens it again, as a restart would.</summary>
    protected abstract IMessageStore Reopen(IMessageStore store);

    public void Dispose()
    {
        _store?.Dispose();
        GC.SuppressFinalize(this);
    }

    private void Write(params StoreOperation[] operations) => Store.Write(new StoreBatch { Operations = operations, Flush = false });

    private StoredQueueState Reloaded(string queue)
    {
        _store = Reopen(Store);
        return Store.Load().Should().ContainSingle(q => q.Name == queue).Subject;
    }

    private static StoredMessage Message(long sequence, string queue = "orders", string eventName = "order.created", DateTimeOffset? deduplicateUntil = null, DateTimeOffset? dueAt = null) => new()
    {
        Queue = queue,
        Sequence = sequence,
        Id = Guid.NewGuid(),
        Event = eventName,
        Payload = new byte[] { 1, 2, (byte)sequence },
        Headers = new Dictionary<string, string> { ["tenant"] = "acme" },
        Timestamp = T0.AddSeconds(sequence),
        ExpiresAt = T0.AddHours(1),
        DueAt = dueAt,
        DeduplicateUntil = deduplicateUntil,
    };

    private static StoredSubscription Subscription(string name, IReadOnlyList<string> filters, long startAfter) => new()
    {
        Queue = "orders",
        Name = name,
        Filters = filters,
        StartAfter = startAfter,
    };

    [Fact]
    public void Load_EmptyStore_HasNoQueues() => Store.Load().Should().BeEmpty();

    [Fact]
    public void Append_ThenReopen_GivesBackEveryFieldInSequenceOrder()
    {
        StoredMessage second = Message(2), first = Message(1);
        Write(StoreOperation.Append(second), StoreOperation.Append(first));

        StoredQueueState queue = Reloaded("orders");

        queue.LastSequence.Should().Be(2);
        queue.Messages.Select(m => m.Sequence).Should().Equal(1, 2);
        StoredMessage loaded = queue.Messages[0];
        (loaded.Queue, loaded.Id, loaded.Event, loaded.Timestamp, loaded.ExpiresAt, loaded.DueAt).Should().Be((first.Queue, first.Id, first.Event, first.Timestamp, first.ExpiresAt, null));
        loaded.Payload.ToArray().Should().Equal(first.Payload.ToArray());
        loaded.Headers.Should().Equal(first.Headers);
    }

    [Fact]
    public void Append_MessageWithOnlyItsRequiredMembers_ComesBackWithTheDefaults()
    {
        var bare = new StoredMessage
        {
            Queue = "orders",
            Sequence = 1,
            Id = Guid.NewGuid(),
            Event = "order.created",
            Payload = new byte[] { 7 },
            Timestamp = T0,
        };
        Write(StoreOperation.Append(bare));

        StoredMessage loaded = Reloaded("orders").Messages.Should().ContainSingle().Subject;

        (loaded.Id, loaded.Sequence, loaded.Timestamp).Should().Be((bare.Id, 1L, T0));
        loaded.Headers.Should().BeEmpty("a message published without headers has none");
        (loaded.ExpiresAt, loaded.DueAt, loaded.DeduplicateUntil).Should().Be(((DateTimeOffset?)null, (DateTimeOffset?)null, (DateTimeOffset?)null));
    }

    [Fact]
    public void Remove_ForgetsTheMessage_ButTheQueueKeepsItsLastSequence()
    {
        Write(StoreOperation.Append(Message(1)), StoreOperation.Append(Message(2)));
        Write(StoreOperation.Remove("orders", 2), StoreOperation.Remove("orders", 1));

        StoredQueueState queue = Reloaded("orders");

        queue.Messages.Should().BeEmpty();
        queue.LastSequence.Should().Be(2, "sequences are never reused, so ids derived from them stay unique");
    }

    [Fact]
    public void SequenceTaken_RaisesTheQueuesLastSequence_NeverLowersIt_AndStoresNoMessage()
    {
        Write(StoreOperation.Append(Message(1)), StoreOperation.SequenceTaken("orders", 4), StoreOperation.SequenceTaken("orders", 3));
        Write(StoreOperation.SequenceTaken("orders", 2));
        Write(StoreOperation.SequenceTaken("unrouted", 7));

        StoredQueueState queue = Reloaded("orders");

        queue.Messages.Select(m => m.Sequence).Should().Equal(1);
        queue.LastSequence.Should().Be(4, "a sequence a publish took is never handed out again, and a lower one changes nothing");
        Store.Load().Should().ContainSingle(q => q.Name == "unrouted").Which.LastSequence.Should().Be(7, "a queue that stored nothing but a sequence keeps it too");
    }

    private IPagedMessageStore Paged => Store as IPagedMessageStore ?? throw new InvalidOperationException($"{Store.GetType().Name} does not read pages (IPagedMessageStore).");

    [Fact]
    public void LoadQueues_GivesEveryQueueWithoutItsMessages_ButWithHowManyItHolds()
    {
        Write(StoreOperation.SaveSubscription(Subscription("a", ["#"], 0)));
        Write([.. Enumerable.Range(1, 7).Select(s => StoreOperation.Append(Message(s)))]);
        Write(StoreOperation.Append(Message(1, queue: "other")), StoreOperation.Ack("orders", "a", 2), StoreOperation.SetDeliveries("orders", "a", 3, 2), StoreOperation.SetCursor("orders", "a", 3));
        _store = Reopen(Store);

        IReadOnlyList<StoredQueueState> queues = Paged.LoadQueues();

        StoredQueueState orders = queues.Should().ContainSingle(q => q.Name == "orders").Subject;
        (orders.Messages.Count, orders.MessageCount, orders.LastSequence).Should().Be((0, 7, 7));
        StoredSubscriptionState a = orders.Subscriptions.Should().ContainSingle().Subject;
        (a.Cursor, a.Acked.Count, a.Deliveries.Count).Should().Be((3, 0, 0), "acks and counts come with each page");
        queues.Should().ContainSingle(q => q.Name == "other").Which.MessageCount.Should().Be(1);
    }

    [Fact]
    public void ReadMessages_GivesAPageInSequenceOrder_WithTheAcksAndCountsOfExactlyThoseMessages()
    {
        Write(StoreOperation.SaveSubscription(Subscription("a", ["#"], 0)), StoreOperation.SaveSubscription(Subscription("b", ["#"], 0)));
        Write([.. Enumerable.Range(1, 10).Select(s => StoreOperation.Append(Message(s)))]);
        Write(
            StoreOperation.Remove("orders", 4),
            StoreOperation.Ack("orders", "a", 2),
            StoreOperation.Ack("orders", "a", 6),
            StoreOperation.Ack("orders", "b", 9),
            StoreOperation.SetDeliveries("orders", "b", 5, 3),
            StoreOperation.SetDeliveries("orders", "b", 8, 1),
            StoreOperation.SetCursor("orders", "a", 6));
        _store = Reopen(Store);
        Paged.LoadQueues();

        StoredQueueState first = Paged.ReadMessages("orders", 0, 4);
        StoredQueueState second = Paged.ReadMessages("orders", first.Messages[^1].Sequence, 4);
        StoredQueueState last = Paged.ReadMessages("orders", second.Messages[^1].Sequence, 4);

        first.Messages.Select(m => m.Sequence).Should().Equal([1, 2, 3, 5], "a removed message is not in any page");
        second.Messages.Select(m => m.Sequence).Should().Equal(6, 7, 8, 9);
        last.Messages.Select(m => m.Sequence).Should().Equal([10], "fewer than asked for: nothing after it");
        first.Messages[0].Should().BeEquivalentTo(Message(1), o => o.Excluding(m => m.Id).Excluding(m => m.Payload), "a page holds whole messages");
        first.Messages[0].Payload.ToArray().Should().Equal(Message(1).Payload.ToArray());
        StoredSubscriptionState FirstOf(StoredQueueState page, string name) => page.Subscriptions.Should().ContainSingle(s => s.Subscription.Name == name).Subject;
        FirstOf(first, "a").Acked.Should().BeEquivalentTo([2L]);
        FirstOf(first, "a").Cursor.Should().Be(6);
        FirstOf(first, "b").Deliveries.Should().BeEquivalentTo(new Dictionary<long, int> { [5] = 3 });
        FirstOf(second, "a").Acked.Should().BeEquivalentTo([6L]);
        FirstOf(second, "b").Acked.Should().BeEquivalentTo([9L]);
        FirstOf(second, "b").Deliveries.Should().BeEquivalentTo(new Dictionary<long, int> { [8] = 1 });
        FirstOf(last, "a").Acked.Should().BeEmpty();
        Paged.ReadMessages("orders", 10, 4).Messages.Should().BeEmpty();
        Paged.ReadMessages("unknown", 0, 4).Messages.Should().BeEmpty("an unknown queue gives an empty page");
    }

    [Fact]
    public void ReadMessages_SeesWhatWasWrittenAfterTheLoad()
    {
        _ = Paged.LoadQueues();
        Write([.. Enumerable.Range(1, 3).Select(s => StoreOperation.Append(Message(s)))]);
        Paged.ReadMessages("orders", 1, 10).Messages.Select(m => m.Sequence).Should().Equal(2, 3);
        Write(StoreOperation.Append(Message(4)), StoreOperation.Remove("orders", 2));
        Paged.ReadMessages("orders", 1, 10).Messages.Select(m => m.Sequence).Should().Equal(3, 4);
    }

    [Fact]
    public void ReadMessages_RefusesAPageOfNothing()
    {
        Paged.Invoking(s => s.ReadMessages("orders", 0, 0)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("maxMessages");
        Paged.Invoking(s => s.ReadMessages("orders", -1, 1)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("afterSequence");
    }

    [Fact]
    public void Remove_ManyInOneBatch_BetweenAcksAndCounts_ForgetsExactlyThoseWithTheirAcksAndCounts()
    {
        Write(StoreOperation.SaveSubscription(Subscription("a", ["#"], 0)), StoreOperation.SaveSubscription(Subscription("b", ["#"], 0)));
        Write([.. Enumerable.Range(1, 8).Select(s => StoreOperation.Append(Message(s)))]);
        Write(
            StoreOperation.SetDeliveries("orders", "a", 3, 2),
            StoreOperation.Remove("orders", 1),
            StoreOperation.Remove("orders", 2),
            StoreOperation.Ack("orders", "b", 4),
            StoreOperation.Remove("orders", 3),
            StoreOperation.Remove("orders", 4),
            StoreOperation.Append(Message(9)),
            StoreOperation.Remove("orders", 6),
            StoreOperation.SetDeliveries("orders", "a", 7, 1),
            StoreOperation.Ack("orders", "b", 8));

        StoredQueueState queue = Reloaded("orders");

        queue.Messages.Select(m => m.Sequence).Should().Equal(5, 7, 8, 9);
        StoredSubscriptionState a = queue.Subscriptions.Single(s => s.Subscription.Name == "a");
        StoredSubscriptionState b = queue.Subscriptions.Single(s => s.Subscription.Name == "b");
        a.Deliveries.Should().Equal(new Dictionary<long, int> { [7] = 1 }, "the count of removed message 3 went with it");
        b.Acked.Should().Equal([8], "the ack of removed message 4 went with it");
    }

    [Fact]
    public void SaveSubscription_AcksDeliveriesAndCursor_ComeBackPerSubscription()
    {
        Write(
            StoreOperation.SaveSubscription(Subscription("billing", ["order.*"], 0)),
            StoreOperation.SaveSubscription(Subscription("audit", ["#"], 0)),
            StoreOperation.Append(Message(1)),
            StoreOperation.Append(Message(2)),
            StoreOperation.Ack("orders", "billing", 1),
            StoreOperation.SetDeliveries("orders", "audit", 2, 3),
            StoreOperation.SetDeliveries("orders", "audit", 2, 4),
            StoreOperation.SetCursor("orders", "audit", 2),
            StoreOperation.SetCursor("orders", "audit", 1));

        StoredQueueState queue = Reloaded("orders");

        StoredSubscriptionState billing = queue.Subscriptions.Single(s => s.Subscription.Name == "billing");
        StoredSubscriptionState audit = queue.Subscriptions.Single(s => s.Subscription.Name == "audit");
        billing.Subscription.Filters.Should().Equal("order.*");
        billing.Acked.Should().BeEquivalentTo([1L]);
        audit.Acked.Should().BeEmpty();
        audit.Deliveries.Should().Equal(new Dictionary<long, int> { [2] = 4 });
        audit.Cursor.Should().Be(2, "a cursor only moves forward");
    }

    [Fact]
    public void Remove_ForgetsTheMessagesAcksAndDeliveries()
    {
        Write(
            StoreOperation.SaveSubscription(Subscription("billing", ["#"], 0)),
            StoreOperation.Append(Message(1)),
            StoreOperation.Ack("orders", "billing", 1),
            StoreOperation.SetDeliveries("orders", "billing", 1, 2));
        Write(StoreOperation.Remove("orders", 1));

        StoredSubscriptionState billing = Reloaded("orders").Subscriptions.Single();

        (billing.Acked.Count, billing.Deliveries.Count).Should().Be((0, 0));
    }

    [Fact]
    public void SaveSubscriptionAgain_ReplacesFiltersAndStart_KeepsItsCursor()
    {
        Write(
            StoreOperation.SaveSubscription(Subscription("billing", ["a"], 0)),
            StoreOperation.SetCursor("orders", "billing", 7));
        Write(StoreOperation.SaveSubscription(Subscription("billing", ["b", "c.#"], 5)));

        StoredSubscriptionState billing = Reloaded("orders").Subscriptions.Single();

        (billing.Subscription.StartAfter, billing.Cursor).Should().Be((5, 7));
        billing.Subscription.Filters.Should().Equal("b", "c.#");
    }

    [Fact]
    public void DeleteSubscription_ForgetsItAndWhatItAcked()
    {
        Write(
            StoreOperation.SaveSubscription(Subscription("billing", ["#"], 0)),
            StoreOperation.Append(Message(1)),
            StoreOperation.Ack("orders", "billing", 1),
            StoreOperation.SetDeliveries("orders", "billing", 1, 2),
            StoreOperation.DeleteSubscription("orders", "billing"),
            StoreOperation.SaveSubscription(Subscription("billing", ["#"], 1)));

        StoredSubscriptionState billing = Reloaded("orders").Subscriptions.Single();

        (billing.Acked.Count, billing.Deliveries.Count, billing.Subscription.StartAfter).Should().Be((0, 0, 1), "the new subscription of the same name starts clean");
    }

    [Fact]
    public void Schedule_ComesBackInOrder_AndUnscheduleForgetsIt()
    {
        StoredMessage Held(int n) => Message(0, eventName: "held." + n, dueAt: T0.AddMinutes(10 - n));
        StoredMessage a = Held(1), b = Held(2), c = Held(3);
        Write(StoreOperation.Schedule(a), StoreOperation.Schedule(b), StoreOperation.Schedule(c));
        Write(StoreOperation.Unschedule("orders", b.Id));

        StoredQueueState queue = Reloaded("orders");

        queue.Scheduled.Select(m => (m.Id, m.DueAt, m.Sequence)).Should().Equal((a.Id, a.DueAt, 0L), (c.Id, c.DueAt, 0L));
        queue.Messages.Should().BeEmpty();
    }

    [Fact]
    public void DeduplicationIds_AreRememberedUntilForgotten()
    {
        StoredMessage early = Message(1, deduplicateUntil: T0.AddMinutes(1)), late = Message(2, deduplicateUntil: T0.AddMinutes(5));
        Write(StoreOperation.Append(early), StoreOperation.Append(late), StoreOperation.Append(Message(3)));
        Write(StoreOperation.Remove("orders", 1), StoreOperation.ForgetIds("orders", T0.AddMinutes(1)));

        StoredQueueState queue = Reloaded("orders");

        queue.DeduplicationIds.Should().Equal(new StoredId { MessageId = late.Id, Sequence = 2, Until = T0.AddMinutes(5) });
    }

    [Fact]
    public void Queues_AreKeptApart()
    {
        Write(StoreOperation.Append(Message(1, "a")), StoreOperation.Append(Message(1, "b")), StoreOperation.Append(Message(2, "b")));
        Write(StoreOperation.Remove("a", 1));

        _store = Reopen(Store);
        IReadOnlyList<StoredQueueState> queues = Store.Load();

        queues.Single(q => q.Name == "a").Messages.Should().BeEmpty();
        queues.Single(q => q.Name == "b").Messages.Select(m => m.Sequence).Should().Equal(1, 2);
    }

    [Fact]
    public void Write_BatchWithAnInvalidOperation_StoresNothingOfIt()
    {
        Write(StoreOperation.Append(Message(1)));

        FluentActions.Invoking(() => Write(StoreOperation.Remove("orders", 1), StoreOperation.Append(Message(2)), default))
            .Should().Throw<MessageStoreException>().WithMessage("*default(StoreOperation)*Nothing of the batch was stored*");

        Reloaded("orders").Messages.Select(m => m.Sequence).Should().Equal([1L], "the whole batch was refused, its valid operations too");
    }

    [Fact]
    public void Write_ManyBatches_AllArrive()
    {
        for (int batch = 0; batch < 20; batch++)
        {
            Write([.. Enumerable.Range(1, 50).Select(i => StoreOperation.Append(Message((batch * 50) + i)))]);
        }

        Write([.. Enumerable.Range(1, 500).Select(i => StoreOperation.Remove("orders", i))]);

        StoredQueueState queue = Reloaded("orders");
        queue.Messages.Select(m => m.Sequence).Should().Equal(Enumerable.Range(501, 500).Select(i => (long)i));
        queue.LastSequence.Should().Be(1000);
    }

    [Fact]
    public void StoreOperation_Factories_RefuseMissingNames()
    {
        FluentActions.Invoking(() => StoreOperation.Remove("", 1)).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => StoreOperation.Ack("orders", null!, 1)).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => StoreOperation.Append(null!)).Should().Throw<ArgumentNullException>();
    }
}
