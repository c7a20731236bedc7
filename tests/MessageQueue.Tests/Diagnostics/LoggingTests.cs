using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Persistence;
using MessageQueue.Testing;
using Microsoft.Extensions.Logging;
using Xunit;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>What the broker logs (category MessageQueue), through a real ILoggerFactory: what went wrong, start and stop; never payloads.</summary>
public sealed class LoggingTests : IAsyncLifetime
{
    private const string Secret = "card 4111-1111-1111-1111";
    private readonly ManualTimeProvider _clock = new();
    private readonly LogSink _logs = new();
    private readonly ILoggerFactory _loggers;
    private Broker _broker = null!;

    public LoggingTests() => _loggers = LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Debug).AddProvider(_logs));

    public Task InitializeAsync()
    {
        _broker = new Broker(new BrokerOptions { TimeProvider = _clock, LoggerFactory = _loggers, Store = new InMemoryMessageStore(), Durability = Durability.InMemory });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        _loggers.Dispose();
    }

    [Fact]
    public void Start_IsLogged_WithTheStore()
    {
        _logs.WithEvent(106).Should().ContainSingle().Which.Message.Should().Be("Message broker started: 0 queues in its store (InMemoryMessageStore)");
    }

    [Fact]
    public async Task Start_WithoutAStore_IsLogged_AsInMemory()
    {
        var logs = new LogSink();
        using ILoggerFactory loggers = LoggerFactory.Create(builder => builder.AddProvider(logs));
        await using var broker = new Broker(new BrokerOptions { TimeProvider = _clock, LoggerFactory = loggers });

        logs.WithEvent(108).Should().ContainSingle().Which.Message.Should().Be("Message broker started in memory, without a store: messages live as long as the process");
        logs.WithEvent(106).Should().BeEmpty();
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task Drops_AreLogged_WithQueueSubscriptionAndReason_ButNotThePayload()
    {
        _broker.DeclareQueue<TestEvent>("bounded", new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.DropOldest, DeadLetters = false });
        Subscription<TestEvent> offline = await _broker.SubscribeAsync<TestEvent>("bounded", "#", new SubscriptionOptions { Name = "batch" });
        await offline.DisposeAsync();
        PublishReceipt first = await _broker.PublishAsync("bounded", "paid", new TestEvent(1, Secret));
        await _broker.PublishAsync("bounded", "paid", new TestEvent(2, Secret));

        LogEntry dropped = _logs.WithEvent(101).Should().ContainSingle().Subject;
        dropped.Level.Should().Be(LogLevel.Debug, "DropOldest drops on purpose, one per publish under load: the counter gives the volume");
        dropped.Message.Should().Be($"Message {first.MessageId} ('paid', sequence 1) was dropped from queue 'bounded' for subscription 'batch': QueueOverflow");

        // A message meant for a dead-letter queue that the queue does not have is a warning.
        await using Subscription<TestEvent> reader = await _broker.SubscribeAsync<TestEvent>("bounded", "#");
        PublishReceipt third = await _broker.PublishAsync("bounded", "paid", new TestEvent(3, Secret));
        await (await reader.ReadAsync()).RejectAsync("bad");
        LogEntry discarded = _logs.WithEvent(101).Should().HaveCount(3).And.ContainSingle(e => e.Level == LogLevel.Warning).Subject;
        discarded.Message.Should().Be($"Message {third.MessageId} ('paid', sequence 3) was dropped from queue 'bounded' for subscription '': DeadLetterDiscarded");
        _logs.Entries.Should().AllSatisfy(e => e.Message.Should().NotContain(Secret));
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task UnroutedPublish_OnAQueueDeclaredOnFirstUse_WarnsOncePerQueue_NamingItAndWhatToDo()
    {
        _broker.DeclareQueue<TestEvent>("orders");
        await using Subscription<TestEvent> shipping = await _broker.SubscribeAsync<TestEvent>("orders", "#");

        // A misspelt queue name: declared on first use, so its messages reach nobody.
        await _broker.PublishAsync("ordres", "placed", new TestEvent(1, Secret));
        await _broker.PublishAsync("ordres", "placed", new TestEvent(2, Secret));
        _broker.TryPublish("ordres", "paid", new TestEvent(3, Secret), out _).Should().BeTrue();

        // A queue declared on first use that has a subscription, but not for this event: warned once too.
        await using Subscription<TestEvent> audit = await _broker.SubscribeAsync<TestEvent>("audit", "refunds.#");
        await _broker.PublishAsync("audit", "placed", new TestEvent(4, Secret));

        // Each queue declared on first use has a warning of its own.
        await _broker.PublishAsync("orders-archive", "placed", new TestEvent(5, Secret));

        // A declared queue's unrouted message is the application's choice: counted, not logged.
        _broker.DeclareQueue<TestEvent>("later");
        await _broker.PublishAsync("later", "placed", new TestEvent(6, Secret));
        await _broker.PublishAsync("orders", "placed", new TestEvent(7, Secret));

        List<LogEntry> warned = [.. _logs.WithEvent(109)];
        warned.Select(e => e.Level).Should().AllBeEquivalentTo(LogLevel.Warning);
        warned.Select(e => e.Message).Should().Equal(
            "Queue 'ordres' was declared on first use (BrokerOptions.AutoDeclareQueues) and message 'placed' published to it matched none of its 0 subscriptions, so it was not kept. If the queue name is a typo, correct it; otherwise subscribe before publishing, or declare the queue with DeclareQueue. Further messages that match no subscription here are counted as Unrouted in the snapshot and by messagequeue.messages.unrouted, without this warning",
            "Queue 'audit' was declared on first use (BrokerOptions.AutoDeclareQueues) and message 'placed' published to it matched none of its 1 subscriptions, so it was not kept. If the queue name is a typo, correct it; otherwise subscribe before publishing, or declare the queue with DeclareQueue. Further messages that match no subscription here are counted as Unrouted in the snapshot and by messagequeue.messages.unrouted, without this warning",
            "Queue 'orders-archive' was declared on first use (BrokerOptions.AutoDeclareQueues) and message 'placed' published to it matched none of its 0 subscriptions, so it was not kept. If the queue name is a typo, correct it; otherwise subscribe before publishing, or declare the queue with DeclareQueue. Further messages that match no subscription here are counted as Unrouted in the snapshot and by messagequeue.messages.unrouted, without this warning");
        BrokerSnapshot snapshot = _broker.GetSnapshot();
        snapshot.Queue("ordres").Unrouted.Should().Be(3, "every unrouted message is counted, though only the first is logged");
        (snapshot.Queue("audit").Unrouted, snapshot.Queue("orders-archive").Unrouted, snapshot.Queue("later").Unrouted, snapshot.Queue("orders").Unrouted).Should().Be((1L, 1L, 1L, 0L));
        _logs.Entries.Should().AllSatisfy(e => e.Message.Should().NotContain(Secret));
    }

    [Fact]
    public async Task UnroutedPublish_OnAQueueDeclaredOnFirstUseAndThenWithDeclareQueue_IsNotWarned()
    {
        await _broker.PublishAsync<TestEvent>("events", "a", new TestEvent(1));
        await using Subscription<TestEvent> first = await _broker.SubscribeAsync<TestEvent>("declared-late", "#");
        await first.DisposeAsync();
        _broker.DeclareQueue<TestEvent>("declared-late");

        await _broker.PublishAsync("declared-late", "a", new TestEvent(2));

        _logs.WithEvent(109).Select(e => e.Message).Should().ContainSingle().Which.Should().StartWith("Queue 'events' ");
        _broker.GetSnapshot().Queue("declared-late").Unrouted.Should().Be(1);
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task HandlerFailures_AndTheDeadLetter_AreLogged()
    {
        await using Subscription handler = await _broker.SubscribeAsync<TestEvent>("orders", ["#"], static (_, _) => throw new InvalidOperationException("no stock"), new SubscriptionOptions { Name = "shipping", MaxDeliveries = 1 });
        PublishReceipt receipt = await _broker.PublishAsync("orders", "placed", new TestEvent(1, Secret));
        LogEntry dead = await _logs.WaitForEvent(102).OrHang("the dead letter's log");

        LogEntry failed = _logs.WithEvent(103).Should().ContainSingle().Subject;
        failed.Level.Should().Be(LogLevel.Warning);
        failed.Exception.Should().BeOfType<InvalidOperationException>();
        failed.Message.Should().Be($"The handler of subscription 'shipping' on queue 'orders' failed on message {receipt.MessageId} ('placed', attempt 1); it is nacked");
        dead.Message.Should().Be($"Message {receipt.MessageId} ('placed', sequence 1) of queue 'orders' went to the dead-letter queue from subscription 'shipping' after 1 attempts: max-deliveries");
        _logs.Entries.Should().AllSatisfy(e => e.Message.Should().NotContain(Secret));
    }

    [Fact]
    public async Task ASlowConsumerCutLoose_IsLogged()
    {
        await using Subscription<TestEvent> slow = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "slow", MaxInFlight = 1, MaxBacklog = 2, BacklogOverflow = BacklogOverflowPolicy.Disconnect });
        for (int i = 1; i <= 4; i++)
        {
            await _broker.PublishAsync("orders", "placed", new TestEvent(i));
        }

        LogEntry cut = await _logs.WaitForEvent(104).OrHang("the cut-off's log");
        (await FluentActions.Awaiting(() => slow.Completion).Should().ThrowAsync<SubscriptionClosedException>()).Which.Reason.Should().Be(SubscriptionCloseReason.CutLoose);
        _logs.WithEvent(104).Should().ContainSingle();
        cut.Message.Should().StartWith("Subscription 'slow' on queue 'orders' fell further behind than its MaxBacklog and was cut loose: 1 consumers closed");
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task Stop_IsLogged_WithWhatWentBackUnsettled()
    {
        var broker = new Broker(new BrokerOptions { TimeProvider = _clock, LoggerFactory = _loggers, ShutdownTimeout = TimeSpan.Zero });
        Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 4 });
        for (int i = 1; i <= 3; i++)
        {
            await broker.PublishAsync("orders", "placed", new TestEvent(i));
        }

        await (await worker.ReadAsync()).AckAsync();
        _ = await worker.ReadAsync();
        _ = await worker.ReadAsync();
        await broker.DisposeAsync();

        _logs.WithEvent(107).Should().ContainSingle().Which.Message.Should().Be(
            "Message broker stopped: 1 queues, 1 consumers detached, 2 deliveries still unsettled went back to their subscriptions");
    }
}
