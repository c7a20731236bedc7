using FluentAssertions;
using MessageQueue.ContractTests;
using Xunit;

namespace MessageQueue.Tests.Transports;

/// <summary>
/// The public rules a transport applies to its input: the same exception type and message as the broker's own checks,
/// so a transport refuses what the broker refuses, in the same words.
/// </summary>
public sealed class MessageRulesTests : IAsyncLifetime
{
    private readonly Broker _broker = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("orders.$dlq.$dlq")]
    [InlineData("$internal")]
    public async Task ThrowIfInvalidQueueName_RefusesWhatTheBrokerRefuses_WithTheSameMessage(string queue)
    {
        ArgumentException broker = (await FluentActions.Awaiting(() => _broker.SubscribeAsync<TestEvent>(queue, "#").AsTask()).Should().ThrowAsync<ArgumentException>()).Which;

        ArgumentException rules = FluentActions.Invoking(() => MessageRules.ThrowIfInvalidQueueName(queue, allowDeadLetterQueue: true)).Should().Throw<ArgumentException>().Which;

        rules.Message.Should().Be(broker.Message);
        rules.ParamName.Should().Be("queue");
    }

    [Theory]
    [InlineData("")]
    [InlineData("a..b")]
    [InlineData("orders.*")]
    public async Task ThrowIfInvalidEventName_RefusesWhatTheBrokerRefuses_WithTheSameMessage(string eventName)
    {
        ArgumentException broker = (await FluentActions.Awaiting(() => _broker.PublishAsync("orders", eventName, new TestEvent(1)).AsTask()).Should().ThrowAsync<ArgumentException>()).Which;

        ArgumentException rules = FluentActions.Invoking(() => MessageRules.ThrowIfInvalidEventName(eventName)).Should().Throw<ArgumentException>().Which;

        rules.Message.Should().Be(broker.Message);
        rules.ParamName.Should().Be("eventName");
    }

    [Theory]
    [InlineData("")]
    [InlineData("orders..created")]
    [InlineData("ord*ers")]
    public async Task ThrowIfInvalidFilter_RefusesWhatTheBrokerRefuses_WithTheSameMessage(string filter)
    {
        ArgumentException broker = (await FluentActions.Awaiting(() => _broker.SubscribeAsync<TestEvent>("orders", [filter]).AsTask()).Should().ThrowAsync<ArgumentException>()).Which;

        ArgumentException rules = FluentActions.Invoking(() => MessageRules.ThrowIfInvalidFilter(filter, "filters")).Should().Throw<ArgumentException>().Which;

        rules.Message.Should().Be(broker.Message);
    }

    [Fact]
    public async Task ThrowIfNullPayload_RefusesANullPayload_WithTheBrokersMessage()
    {
        ArgumentNullException broker = (await FluentActions.Awaiting(() => _broker.PublishAsync<TestEvent?>("orders", "created", null).AsTask()).Should().ThrowAsync<ArgumentNullException>()).Which;

        ArgumentNullException rules = FluentActions.Invoking(() => MessageRules.ThrowIfNullPayload<TestEvent?>(null, "orders", "created")).Should().Throw<ArgumentNullException>().Which;

        rules.Message.Should().Be(broker.Message);
        rules.ParamName.Should().Be("payload");
    }

    [Fact]
    public void MessageConstructor_ForATransport_KeepsWhatItWasGiven_AndRefusesANullQueueOrEvent()
    {
        var id = Guid.NewGuid();
        var at = new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.FromHours(2));
        var message = new Message<TestEvent>(id, "orders", "created", new TestEvent(7), 42, at, new Dictionary<string, string> { ["k"] = "v" });

        (message.Id, message.Queue, message.Event, message.Payload.Number, message.Sequence).Should().Be((id, "orders", "created", 7, 42L));
        message.Timestamp.Should().Be(at).And.Subject!.Value.Offset.Should().Be(TimeSpan.Zero, "timestamps are UTC");
        message.Headers.Should().Contain("k", "v");
        message.ExpiresAt.Should().BeNull();
        new Message<TestEvent>(id, "orders", "created", new TestEvent(1), 1, at).Headers.Should().BeEmpty("no headers is an empty dictionary, never null");

        FluentActions.Invoking(() => new Message<TestEvent>(id, null!, "created", new TestEvent(1), 1, at)).Should().Throw<ArgumentNullException>().WithParameterName("queue");
        FluentActions.Invoking(() => new Message<TestEvent>(id, "orders", null!, new TestEvent(1), 1, at)).Should().Throw<ArgumentNullException>().WithParameterName("eventName");
    }
}
