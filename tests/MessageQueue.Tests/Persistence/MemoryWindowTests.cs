using System.Reflection;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Persistence;
using Microsoft.Extensions.Logging;
using Xunit;

namespace MessageQueue.Tests.Persistence;

/// <summary>
/// A durable queue keeps at most <see cref="QueueOptions.MaxMessagesInMemory"/> messages in memory; the rest wait in the
/// store and are read back in sequence order as consumers release the ones in memory, at run time and after a restart.
/// </summary>
[Trait("Guarantee", "7")]
public sealed class MemoryWindowTests : IDisposable
{
    private const string Queue = "orders";
    private readonly WatchedStore _store = new(); // outlives each broker: a restart on the same store
    private readonly LogSink _logs = new();
    private readonly ILoggerFactory _loggers;

    public MemoryWindowTests() => _loggers = LoggerFactory.Create(builder => builder.AddProvider(_logs));

    public void Dispose() => _loggers.Dispose();

    private Broker Start() => new(new BrokerOptions { Store = _store, Durability = Durability.Committed, ShutdownTimeout = TimeSpan.Zero, LoggerFactory = _loggers });

    private static void Declare(Broker broker, int window) =>
        broker.DeclareQueue<TestEvent>(Queue, new QueueOptions { MaxMessages = 1_000, MaxMessagesInMemory = window, DeadLetters = true });

    private static QueueSnapshot Snapshot(Broker broker) => broker.GetSnapshot().Queues.Single(q => q.Name == Queue);

    private static async Task<List<(int Number, int Attempt)>> ReadAndAck(Subscription<TestEvent> subscription, int count)
    {
        var read = new List<(int, int)>(count);
        for (int i = 0; i < count; i++)
        {
            Delivery<TestEvent> delivery = await subscription.ReadAsync().OrHang($"delivery {i + 1} of {count}");
            read.Add((delivery.Payload.Number, delivery.Attempt));
            (await delivery.AckAsync()).Should().BeTrue();
        }

        return read;
    }

    private static async Task Publish(Broker broker, int from, int to, Func<int, string>? eventName = null)
    {
        for (int i = from; i <= to; i++)
        {
            await broker.PublishAsync(Queue, eventName?.Invoke(i) ?? "order.created", new TestEvent(i));
        }
    }

    private static IEnumerable<(int, int)> Fresh(int from, int to) => Enumerable.Range(from, to - from + 1).Select(i => (i, 1));

    [Fact]
    public async Task PastTheWindow_MessagesWaitInTheStore_AndAreReadBackInOrder_ThenNewOnesGoStraightToMemory()
    {
        await using Broker broker = Start();
        Declare(broker, window: 10);
        await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 4 });

        await Publish(broker, 1, 50);
        QueueSnapshot full = Snapshot(broker);
        (full.Depth, full.PagedOut).Should().Be((50, 40), "all 50 are retained, 40 of them only in the store");

        (await ReadAndAck(worker, 50)).Should().Equal(Fresh(1, 50), "every message once, in sequence order, across the reads");
        await _store.WhenAsync(s => s.Messages(Queue) == 0, "the store forgets every acked message");
        QueueSnapshot drained = Snapshot(broker);
        (drained.Depth, drained.PagedOut).Should().Be((0, 0));

        await Publish(broker, 51, 55);
        Snapshot(broker).PagedOut.Should().Be(0, "caught up: a new message goes straight to memory");
        (await ReadAndAck(worker, 5)).Should().Equal(Fresh(51, 55));
    }

    [Fact]
    public async Task ARestart_ReadsBackOnlyTheWindow_AndDeliversTheWholeBacklogInOrder()
    {
        await using (Broker broker = Start())
        {
            Declare(broker, window: 100);
            await (await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker" })).DisposeAsync();
            await Publish(broker, 1, 60);
        }

        await using (Broker broker = Start())
        {
            Declare(broker, window: 8);
            QueueSnapshot recovered = Snapshot(broker);
            (recovered.Depth, recovered.PagedOut).Should().Be((60, 52), "every stored message counts towards the depth; 8 are in memory");
            recovered.Subscriptions.Single().Backlog.Should().Be(8);

            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 2 });
            (await ReadAndAck(worker, 60)).Should().Equal(Fresh(1, 60));
            worker.TryRead(out _).Should().BeFalse("nothing is delivered twice");
        }
    }

    [Fact]
    public async Task TwoSubscriptions_EachGetsItsOwnMessagesInOrder_TheFasterWaitingForTheSlowerAtTheWindow()
    {
        await using Broker broker = Start();
        Declare(broker, window: 6);
        await (await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "all" })).DisposeAsync();
        await (await broker.SubscribeAsync<TestEvent>(Queue, "b.*", new SubscriptionOptions { Name = "only-b" })).DisposeAsync();
        await Publish(broker, 1, 60, i => i % 3 == 0 ? "b.created" : "a.created");

        await using Subscription<TestEvent> all = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "all", MaxInFlight = 2 });
        await using Subscription<TestEvent> onlyB = await broker.SubscribeAsync<TestEvent>(Queue, "b.*", new SubscriptionOptions { Name = "only-b", MaxInFlight = 2 });
        Task<List<(int, int)>> fast = ReadAndAck(all, 60);
        Task<List<(int, int)>> slow = ReadAndAck(onlyB, 20);

        (await fast).Should().Equal(Fresh(1, 60));
        (await slow).Should().Equal(Enumerable.Range(1, 20).Select(i => (i * 3, 1)));
        await _store.WhenAsync(s => s.Messages(Queue) == 0, "the store forgets every message both settled");
        Snapshot(broker).Depth.Should().Be(0);
    }

    [Fact]
    public async Task AfterARestart_MessagesPastTheWindow_KeepTheirAcksAndAttempts()
    {
        await using (Broker broker = Start())
        {
            Declare(broker, window: 100);
            await (await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "behind" })).DisposeAsync();
            await using Subscription<TestEvent> ahead = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "ahead", MaxInFlight = 100 });
            await Publish(broker, 1, 30);
            for (int i = 1; i <= 30; i++)
            {
                Delivery<TestEvent> delivery = await ahead.ReadAsync().OrHang($"message {i}");
                if (i != 25)
                {
                    await delivery.AckAsync();
                }
            }

            await broker.FlushAsync();
        }

        await using (Broker broker = Start())
        {
            Declare(broker, window: 5);
            Snapshot(broker).Depth.Should().Be(30, "'behind' holds all 30");
            await using Subscription<TestEvent> behind = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "behind", MaxInFlight = 1 });
            await using Subscription<TestEvent> ahead = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "ahead", MaxInFlight = 1 });
            Task<List<(int, int)>> aheadReads = ReadAndAck(ahead, 1);

            (await ReadAndAck(behind, 30)).Should().Equal(Fresh(1, 30));
            (await aheadReads).Should().Equal([(25, 2)], "'ahead' acked every other message before the restart, and had read 25 once");
            await _store.WhenAsync(s => s.Messages(Queue) == 0, "the store forgets every message both settled");
            ahead.TryRead(out _).Should().BeFalse();
        }
    }

    [Fact]
    public async Task ASubscriptionWithoutAName_GetsTheMessagesReadBack()
    {
        await using Broker broker = Start();
        Declare(broker, window: 4);
        await using Subscription<TestEvent> live = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { MaxInFlight = 1 });
        await Publish(broker, 1, 20);
        Snapshot(broker).PagedOut.Should().Be(16);

        (await ReadAndAck(live, 20)).Should().Equal(Fresh(1, 20));
    }

    [Fact]
    public async Task ADeletedSubscription_LetsGoOfTheMessagesWaitingInTheStore()
    {
        await using Broker broker = Start();
        Declare(broker, window: 5);
        await (await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "gone" })).DisposeAsync();
        await Publish(broker, 1, 40);
        Snapshot(broker).PagedOut.Should().Be(35);

        (await broker.DeleteSubscriptionAsync(Queue, "gone")).Should().BeTrue();

        await _store.WhenAsync(s => s.Messages(Queue) == 0, "every message read back has no holder, and leaves the store");
        QueueSnapshot after = Snapshot(broker);
        (after.Depth, after.PagedOut).Should().Be((0, 0));
    }

    /// <summary>Rejects message 0 into the dead-letter queue, publishes 1 to 20 (15 of them into the store only), and replays 0.</summary>
    private static async Task<Subscription<TestEvent>> ReplayWhileMessagesWaitInTheStore(Broker broker)
    {
        Declare(broker, window: 5);
        Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 1 });
        await broker.PublishAsync(Queue, "order.created", new TestEvent(0));
        Delivery<TestEvent> poison = await worker.ReadAsync().OrHang("the message to reject");
        (await poison.RejectAsync("bad")).Should().BeTrue();
        await Publish(broker, 1, 20);
        Snapshot(broker).PagedOut.Should().Be(15);
        (await broker.ReplayDeadLettersAsync(Queue)).Should().Be(1);
        return worker;
    }

    [Fact]
    public async Task AReplayedDeadLetter_WaitsItsTurnBehindTheMessagesInTheStore_AndGoesOutOnce()
    {
        await using Broker broker = Start();
        await using Subscription<TestEvent> worker = await ReplayWhileMessagesWaitInTheStore(broker);

        List<(int Number, int Attempt)> read = await ReadAndAck(worker, 21);

        read.Should().Equal([.. Fresh(1, 20), (0, 1)], "in sequence order, none of them delivered before (the replay is a new message)");
        await _store.WhenAsync(s => s.Messages(Queue) == 0, "the store forgets every acked message");
        worker.TryRead(out _).Should().BeFalse("the replayed message is not read back a second time");
        QueueSnapshot after = Snapshot(broker);
        (after.Depth, after.Subscriptions.Single().Redelivered).Should().Be((0, 0));
    }

    [Fact]
    public async Task AReplayedDeadLetterInTheStore_DoesNotMakeOlderMessagesLookDelivered_AfterARestart()
    {
        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> worker = await ReplayWhileMessagesWaitInTheStore(broker);
            (await ReadAndAck(worker, 6)).Should().Equal(Fresh(1, 6), "the replayed message does not overtake the five that were in memory with it, nor the next");
            await broker.FlushAsync();
        }

        await using (Broker broker = Start())
        {
            Declare(broker, window: 5);
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 1 });
            (await ReadAndAck(worker, 15)).Should().Equal([.. Fresh(7, 20), (0, 1)], "the subscription's stored read position never passed a message it had not read");
        }
    }

    [Theory]
    [InlineData(1_000)]
    [InlineData(2)]
    public async Task DropOldest_KeepsTheQueueWithinMaxMessages_WhateverTheWindow(int window)
    {
        await using Broker broker = Start();
        broker.DeclareQueue<TestEvent>(Queue, new QueueOptions { MaxMessages = 5, MaxMessagesInMemory = window, Overflow = OverflowPolicy.DropOldest, DeadLetters = false });
        await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 2 });

        await Publish(broker, 1, 50);

        QueueSnapshot snapshot = Snapshot(broker);
        (snapshot.Depth, snapshot.Dropped, snapshot.PagedOut).Should().Be((5, 45, 0), "a DropOldest queue drops its oldest waiting message at once, so it keeps its messages in memory");
    }

    /// <summary>
    /// Publishers racing a consumer at the edge of a tiny window: the consumer's release and the writer's decision to keep
    /// a message in the store cross all the time, and a read must follow whichever comes second.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task PublishersRacingAConsumer_AtTheEdgeOfATinyWindow_EveryMessageArrives(int window)
    {
        const int Publishers = 4, Each = 1_500;
        await using Broker broker = Start();
        Declare(broker, window);
        await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 1 });
        Task[] publishers = [.. Enumerable.Range(0, Publishers).Select(p => Task.Run(async () =>
        {
            for (int i = 0; i < Each; i++)
            {
                await broker.PublishAsync(Queue, "order.created", new TestEvent((p * Each) + i));
            }
        }))];

        var seen = new HashSet<int>();
        for (int i = 0; i < Publishers * Each; i++)
        {
            Delivery<TestEvent> delivery = await worker.ReadAsync().OrHang($"delivery {i + 1} of {Publishers * Each}");
            seen.Add(delivery.Payload.Number).Should().BeTrue($"message {delivery.Payload.Number} arrives once");
            await delivery.AckAsync();
        }

        await Task.WhenAll(publishers).OrHang("the publishers");
        seen.Should().HaveCount(Publishers * Each);
        (Snapshot(broker).Depth, Snapshot(broker).PagedOut).Should().Be((0, 0));
    }

    /// <summary>
    /// Should a read request ever be lost (a consumer saw a read still queued that had in fact already looked and found no
    /// room), the queue must not stay stuck with messages in the store and none in memory: the next message kept in the
    /// store asks again. The lost request is set up by hand, through the pager's flag.
    /// </summary>
    [Fact]
    public async Task AReadRequestThatWasLost_IsMadeUpForByTheNextMessageKeptInTheStore()
    {
        await using Broker broker = Start();
        Declare(broker, window: 2);
        await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 1 });
        await Publish(broker, 1, 5);
        var queues = (Dictionary<string, BrokerQueue>)typeof(Broker).GetField("_queues", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(broker)!;
        MessagePager<TestEvent> pager = ((DurableQueueStorage<TestEvent>)((BrokerQueue<TestEvent>)queues[Queue]).Storage).Pager!;
        FieldInfo readQueued = typeof(MessagePager<TestEvent>).GetField("_readQueued", BindingFlags.NonPublic | BindingFlags.Instance)!;

        readQueued.SetValue(pager, 1); // what the consumer sees: a read queued, so it asks for none
        (await ReadAndAck(worker, 2)).Should().Equal(Fresh(1, 2));
        readQueued.SetValue(pager, 0); // that read had already looked, before the acks, and found no room
        pager.InMemory.Should().Be(0);

        await Publish(broker, 6, 6);

        (await ReadAndAck(worker, 4)).Should().Equal(Fresh(3, 6), "the message kept in the store saw the empty window and asked for a read");
    }

    [Fact]
    public async Task APayloadThatCannotBeReadBack_StopsTheReads_LogsWhy_AndLosesNothing()
    {
        await using (Broker broker = Start())
        {
            Declare(broker, window: 100);
            await (await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker" })).DisposeAsync();
            await Publish(broker, 1, 9);
        }

        // What another version of the application might have left: a payload this one cannot read, past the window.
        _store.Write(new StoreBatch
        {
            Operations = [StoreOperation.Append(new StoredMessage { Queue = Queue, Sequence = 10, Id = Guid.NewGuid(), Event = "order.created", Payload = "not json"u8.ToArray(), Timestamp = DateTimeOffset.UnixEpoch })],
        });

        await using (Broker broker = Start())
        {
            Declare(broker, window: 4);
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>(Queue, "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 1 });
            (await ReadAndAck(worker, 9)).Should().Equal(Fresh(1, 9), "the messages before it are read back and delivered");

            LogEntry failed = await _logs.WaitForEvent(110).OrHang("the log entry");
            failed.Level.Should().Be(LogLevel.Error);
            failed.Message.Should().Contain($"Queue '{Queue}' stopped reading its stored messages back").And.Contain("Nothing is lost");
            failed.Exception.Should().BeOfType<MessageStoreException>().Which.Message.Should().Contain("cannot be read as TestEvent");
            worker.TryRead(out _).Should().BeFalse();
        }

        _store.Messages(Queue).Should().Be(1, "the unreadable message stays in the store for a broker that can read it");
    }

    /// <summary>A store whose writes a test can wait on: the condition is checked after each committed batch.</summary>
    private sealed class WatchedStore : IPagedMessageStore
    {
        private readonly InMemoryMessageStore _inner = new();
        private readonly Lock _gate = new();
        private readonly List<(Func<WatchedStore, bool> Condition, TaskCompletionSource Met)> _waiters = [];

        public int Messages(string queue) => _inner.Load().SingleOrDefault(q => q.Name == queue)?.Messages.Count ?? 0;

        public Task WhenAsync(Func<WatchedStore, bool> condition, string what)
        {
            var met = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                if (condition(this))
                {
                    return Task.CompletedTask;
                }

                _waiters.Add((condition, met));
            }

            return met.Task.OrHang(what);
        }

        public IReadOnlyList<StoredQueueState> Load() => _inner.Load();

        public IReadOnlyList<StoredQueueState> LoadQueues() => _inner.LoadQueues();

        public StoredQueueState ReadMessages(string queue, long afterSequence, int maxMessages) => _inner.ReadMessages(queue, afterSequence, maxMessages);

        public void Write(StoreBatch batch)
        {
            _inner.Write(batch);
            lock (_gate)
            {
                _waiters.RemoveAll(w =>
                {
                    if (!w.Condition(this))
                    {
                        return false;
                    }

                    w.Met.SetResult();
                    return true;
                });
            }
        }

        public void Dispose() => _inner.Dispose();
    }
}
