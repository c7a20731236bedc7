using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>What <see cref="Broker.GetSnapshot"/> reports about clients, queues and subscriptions.</summary>
public sealed class SnapshotTests : IAsyncLifetime
{
    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2026, 11, 21, 12, 0, 0, TimeSpan.Zero));
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        _broker = new Broker(new BrokerOptions { TimeProvider = _clock });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task GetSnapshot_ConnectedClients_ListsEachWithWhatItSubscribed()
    {
        await using BrokerClient indexer = _broker.Connect("indexer");
        await using BrokerClient auditor = _broker.Connect("auditor");
        await using Subscription<TestEvent> a = await indexer.SubscribeAsync<TestEvent>("database", ["add", "update"], new SubscriptionOptions { MaxInFlight = 8 });
        await using Subscription<TestEvent> b = await auditor.SubscribeAsync<TestEvent>("database", "#", new SubscriptionOptions { Name = "audit", AutoAck = true });

        BrokerSnapshot snapshot = _broker.GetSnapshot();

        snapshot.Timestamp.Should().Be(_clock.GetUtcNow());
        snapshot.Clients.Select(c => c.Name).Should().Equal(Broker.BuiltInClientName, "indexer", "auditor");
        snapshot.Clients.Select(c => c.Id).Should().OnlyHaveUniqueItems();
        ConsumerSnapshot indexed = snapshot.Clients[1].Consumers.Should().ContainSingle().Subject;
        indexed.Queue.Should().Be("database");
        indexed.Subscription.Should().BeNull();
        indexed.Filters.Should().Equal("add", "update");
        indexed.MaxInFlight.Should().Be(8);
        ConsumerSnapshot audited = snapshot.Clients[2].Consumers.Should().ContainSingle().Subject;
        audited.Subscription.Should().Be("audit");
        audited.AutoAck.Should().BeTrue();
    }

    [Fact]
    public async Task ToString_PrintsEveryMember_ListsByTheirItems_AndNestedSnapshotsInFull()
    {
        await using BrokerClient indexer = _broker.Connect("indexer");
        await using Subscription<TestEvent> indexed = await indexer.SubscribeAsync<TestEvent>("database", ["add", "update.*"], new SubscriptionOptions { Name = "index", MaxInFlight = 8 });
        await _broker.PublishAsync("database", "add", new TestEvent(1));

        BrokerSnapshot snapshot = _broker.GetSnapshot();
        QueueSnapshot database = snapshot.Queue("database");
        SubscriptionSnapshot subscription = database.Subscription("index");
        ClientSnapshot client = snapshot.Clients[1];
        ConsumerSnapshot consumer = client.Consumers[0];

        subscription.ToString().Should().StartWith("SubscriptionSnapshot { Queue = database, Name = index, IsDurable = True, Filters = [add, update.*], Consumers = 1,");
        consumer.ToString().Should().Be($"ConsumerSnapshot {{ Queue = database, Subscription = index, Filters = [add, update.*], InFlight = 1, MaxInFlight = 8, AutoAck = False, IsStandby = False, SubscriptionId = {consumer.SubscriptionId} }}");
        consumer.SubscriptionId.Should().Be(subscription.Id, "a consumer names the subscription it is attached to");
        client.ToString().Should().Be($"ClientSnapshot {{ Id = {client.Id}, Name = indexer, Consumers = [{consumer}] }}");
        database.ToString().Should().EndWith($"Subscriptions = [{subscription}] }}");
        snapshot.Queue("database.$dlq").ToString().Should().EndWith("Subscriptions = [] }", "an empty list prints as []");
        string whole = snapshot.ToString();
        whole.Should().StartWith("BrokerSnapshot { Timestamp = 11/21/2026 12:00:00 +00:00, Queues = [QueueSnapshot { Name = database, PayloadType = MessageQueue.ContractTests.TestEvent,");
        whole.Should().Contain($"Queues = [{database}, {snapshot.Queue("database.$dlq")}], Clients = [{snapshot.Clients[0]}, {client}], EventHandlerFailures = 0, LastEventHandlerFailure =  }}");
        whole.Should().NotContain("System.Collections").And.NotContain("System.String[]").And.NotContain("`1");

        // Every public property is printed, so that a member added later is not left out of the text.
        foreach (object record in new object[] { snapshot, database, subscription, client, consumer })
        {
            string text = record.ToString()!;
            foreach (System.Reflection.PropertyInfo property in record.GetType().GetProperties())
            {
                text.Should().Contain($" {property.Name} = ", $"{record.GetType().Name} prints {property.Name}");
            }
        }
    }

    [Fact]
    public async Task GetSnapshot_TwoEphemeralSubscriptions_AreToldApartByTheirIds_WhichStayTheSameAcrossSnapshots()
    {
        await using Subscription<TestEvent> first = await _broker.SubscribeAsync<TestEvent>("db", "#");
        await using Subscription<TestEvent> second = await _broker.SubscribeAsync<TestEvent>("db", "#");

        SubscriptionSnapshot[] before = [.. _broker.GetSnapshot().Queue("db").Subscriptions];
        SubscriptionSnapshot[] after = [.. _broker.GetSnapshot().Queue("db").Subscriptions];

        before.Should().HaveCount(2).And.OnlyContain(s => s.Name == null);
        before.Select(s => s.Id).Should().OnlyHaveUniqueItems("each subscription has its own number in its queue");
        after.Select(s => s.Id).Should().Equal(before.Select(s => s.Id), "the number is the same in every snapshot of one subscription");
        before[0].Should().NotBe(before[1], "two ephemeral subscriptions with equal counts are still two subscriptions");
        after[0].Should().Be(before[0], "two snapshots of one idle subscription are equal");
    }

    [Fact]
    public async Task GetSnapshot_ClientDisposed_DisappearsFromTheList()
    {
        BrokerClient client = _broker.Connect("short-lived");
        await client.SubscribeAsync<TestEvent>("database", "#");

        await client.DisposeAsync();

        _broker.GetSnapshot().Clients.Select(c => c.Name).Should().Equal(Broker.BuiltInClientName);
        _broker.GetSnapshot().Queue("database").Subscriptions.Should().BeEmpty();
    }

    [Fact]
    public async Task GetSnapshot_DeliveriesTakenBackUnreadWhenAConsumerLeaves_AreNotCountedAsDelivered()
    {
        var options = new SubscriptionOptions { Name = "worker", MaxInFlight = 10, RedeliveryDelays = [TimeSpan.Zero] };
        await using (Subscription<TestEvent> first = await _broker.SubscribeAsync<TestEvent>("database", "#", options))
        {
            for (int i = 0; i < 10; i++)
            {
                await _broker.PublishAsync("database", "add", new TestEvent(i));
            }

            _broker.GetSnapshot().Queue("database").Subscription("worker").Delivered.Should().Be(10, "all ten were handed to the consumer");
            for (int i = 0; i < 3; i++)
            {
                first.TryRead(out _).Should().BeTrue();
            }
        }

        SubscriptionSnapshot afterLeaving = _broker.GetSnapshot().Queue("database").Subscription("worker");
        afterLeaving.Delivered.Should().Be(3, "the seven never read came back without being delivered");
        afterLeaving.Redelivered.Should().Be(0);

        await using Subscription<TestEvent> second = await _broker.SubscribeAsync<TestEvent>("database", "#", options);
        var attempts = new List<int>();
        while (second.TryRead(out Delivery<TestEvent> delivery))
        {
            attempts.Add(delivery.Attempt);
            await delivery.AckAsync();
        }

        attempts.Should().Equal([2, 2, 2, 1, 1, 1, 1, 1, 1, 1]);
        SubscriptionSnapshot done = _broker.GetSnapshot().Queue("database").Subscription("worker");
        done.Delivered.Should().Be(13, "three read by the first consumer, then all ten by the second");
        done.Redelivered.Should().Be(3);
    }

    [Fact]
    public async Task GetSnapshot_AfterTraffic_CountsEverySettlementPerSubscription()
    {
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("database", ["add", "delete"], new SubscriptionOptions { Name = "worker", MaxInFlight = 2 });
        for (int i = 0; i < 6; i++)
        {
            await _broker.PublishAsync("database", i % 2 == 0 ? "add" : "delete", new TestEvent(i));
        }

        await _broker.PublishAsync("database", "update", new TestEvent(99));

        (await (await subscription.ReadAsync()).AckAsync()).Should().BeTrue();
        await (await subscription.ReadAsync()).NackAsync(TimeSpan.Zero);

        // With MaxInFlight 2, message 2 was already in the channel when message 1 came back.
        Delivery<TestEvent> held = await subscription.ReadAsync();
        held.Payload.Number.Should().Be(2);
        Delivery<TestEvent> redelivered = await subscription.ReadAsync();
        (redelivered.Payload.Number, redelivered.Attempt).Should().Be((1, 2));
        await redelivered.RejectAsync("bad");

        QueueSnapshot queue = _broker.GetSnapshot().Queue("database");
        queue.Published.Should().Be(7);
        queue.LastSequence.Should().Be(7);
        queue.Unrouted.Should().Be(1);
        queue.DeadLettered.Should().Be(1);
        queue.Depth.Should().Be(4, "six routed, one acked, one dead-lettered");
        SubscriptionSnapshot worker = queue.Subscription("worker");
        worker.IsDurable.Should().BeTrue();
        worker.Consumers.Should().Be(1);
        worker.Filters.Should().Equal("add", "delete");
        worker.Delivered.Should().Be(5, "four first deliveries and one redelivery, with MaxInFlight 2");
        worker.Redelivered.Should().Be(1);
        worker.Acked.Should().Be(1);
        worker.Nacked.Should().Be(1);
        worker.DeadLettered.Should().Be(1);
        worker.InFlight.Should().Be(2, "one held after reading, one pushed and unread");
        worker.Backlog.Should().Be(2);
        _broker.GetSnapshot().Queue("database.$dlq").Depth.Should().Be(1);

        await held.AckAsync();
        _broker.GetSnapshot().Queue("database").Subscription("worker").Acked.Should().Be(2);
    }

    [Fact]
    public async Task GetSnapshot_ConsumerDetached_KeepsItsCountsInTheSubscription()
    {
        Subscription<TestEvent> first = await _broker.SubscribeAsync<TestEvent>("database", "#", new SubscriptionOptions { Name = "worker" });
        await _broker.PublishAsync("database", "add", new TestEvent(1));
        await (await first.ReadAsync()).AckAsync();
        await first.DisposeAsync();

        SubscriptionSnapshot worker = _broker.GetSnapshot().Queue("database").Subscription("worker");
        worker.Acked.Should().Be(1);
        worker.Consumers.Should().Be(0);
    }
}
