using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.Queues;

/// <summary>
/// The envelope keeps what a plain message shares with its queue (name, id prefix) outside itself, and what only some
/// messages have (headers, a time to live, an id of their own) in a second object: every property reads the same either way.
/// </summary>
public sealed class EnvelopeTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 6, 9, 0, 0, TimeSpan.Zero);

    // A manual clock, so the timestamps and expiries are exact.
    private static Broker NewBroker() => new(new BrokerOptions { TimeProvider = new ManualTimeProvider(Start), ShutdownTimeout = TimeSpan.Zero });

    [Fact]
    public async Task APlainMessage_HasItsQueueAnIdOfItsOwnNoHeadersAndNoExpiry()
    {
        await using Broker broker = NewBroker();
        await using Subscription<TestEvent> consumer = await broker.SubscribeAsync<TestEvent>("plain", "#");
        PublishReceipt first = await broker.PublishAsync("plain", "e", new TestEvent(1));
        PublishReceipt second = await broker.PublishAsync("plain", "e", new TestEvent(2));

        consumer.TryRead(out Delivery<TestEvent> one).Should().BeTrue();
        consumer.TryRead(out Delivery<TestEvent> two).Should().BeTrue();
        one.Message.Id.Should().Be(first.MessageId).And.Be(one.Message.Id, "the id is the same every time it is read");
        two.Message.Id.Should().Be(second.MessageId).And.NotBe(one.Message.Id);
        one.Message.Queue.Should().Be("plain");
        one.Message.Event.Should().Be("e");
        one.Message.Sequence.Should().Be(first.Sequence);
        one.Message.Timestamp.Should().Be(Start);
        one.Message.Headers.Should().BeEmpty();
        one.Message.ExpiresAt.Should().BeNull();
    }

    [Fact]
    public async Task AMessageWithHeadersATimeToLiveAndItsOwnId_KeepsAllThree()
    {
        await using Broker broker = NewBroker();
        broker.DeclareQueue<TestEvent>("rich", new QueueOptions { DeduplicationWindow = TimeSpan.FromMinutes(1) });
        await using Subscription<TestEvent> consumer = await broker.SubscribeAsync<TestEvent>("rich", "#");
        var id = Guid.NewGuid();
        PublishReceipt receipt = await broker.PublishAsync("rich", "e", new TestEvent(1), new PublishOptions
        {
            MessageId = id,
            TimeToLive = TimeSpan.FromSeconds(30),
            Headers = new Dictionary<string, string> { ["tenant"] = "a" },
        });

        consumer.TryRead(out Delivery<TestEvent> delivery).Should().BeTrue();
        delivery.Message.Id.Should().Be(id).And.Be(receipt.MessageId);
        delivery.Message.Queue.Should().Be("rich");
        delivery.Message.Headers.Should().Equal(new Dictionary<string, string> { ["tenant"] = "a" });
        delivery.Message.ExpiresAt.Should().Be(Start + TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task AQueueWithADefaultTimeToLive_StampsEveryMessageWithItsExpiry()
    {
        await using Broker broker = NewBroker();
        broker.DeclareQueue<TestEvent>("ttl", new QueueOptions { TimeToLive = TimeSpan.FromMinutes(5) });
        await using Subscription<TestEvent> consumer = await broker.SubscribeAsync<TestEvent>("ttl", "#");
        PublishReceipt receipt = await broker.PublishAsync("ttl", "e", new TestEvent(1));

        consumer.TryRead(out Delivery<TestEvent> delivery).Should().BeTrue();
        delivery.Message.ExpiresAt.Should().Be(Start + TimeSpan.FromMinutes(5));
        delivery.Message.Id.Should().Be(receipt.MessageId, "an id made by the queue is kept beside the expiry");
        delivery.Message.Headers.Should().BeEmpty();
    }

    [Fact]
    public void ATransportsEnvelope_ReadsBackWhatItWasGiven()
    {
        var id = Guid.NewGuid();
        var headers = new Dictionary<string, string> { ["k"] = "v" };
        var message = new Message<TestEvent>(id, "q", "e", new TestEvent(7), 12, Start, headers, Start.AddMinutes(1));

        message.Id.Should().Be(id);
        message.Queue.Should().Be("q");
        message.Event.Should().Be("e");
        message.Payload.Should().Be(new TestEvent(7));
        message.Sequence.Should().Be(12);
        message.Timestamp.Should().Be(Start);
        message.Headers.Should().Equal(headers);
        message.ExpiresAt.Should().Be(Start.AddMinutes(1));
        new Message<TestEvent>(id, "q", "e", new TestEvent(7), 12, Start).Headers.Should().BeEmpty();
    }
}
