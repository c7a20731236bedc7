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
