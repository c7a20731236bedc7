using FluentAssertions;
using MessageQueue.Testing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace MessageQueue.Testing.Tests.Api;

/// <summary>The bad-input catalogue of the test doubles: each gets a clear exception that says what to do.</summary>
public sealed class BadInputTests
{
    public static TheoryData<string, Action, Type, string> Cases() => new()
    {
        { "harness with its own clock", () => _ = new BrokerTestHarness(new BrokerTestHarnessOptions { Broker = new BrokerOptions { TimeProvider = new ManualTimeProvider() } }), typeof(ArgumentException), "the harness brings its own clock" },
        { "harness with a store", () => _ = new BrokerTestHarness(new BrokerTestHarnessOptions { Broker = new BrokerOptions { Store = new MessageQueue.Persistence.InMemoryMessageStore() } }), typeof(ArgumentException), "the harness runs in memory" },
        { "harness with a zero timeout", () => _ = new BrokerTestHarness(new BrokerTestHarnessOptions { IdleTimeout = TimeSpan.Zero }), typeof(ArgumentOutOfRangeException), "IdleTimeout must be positive" },
        { "harness options in DI", () => new ServiceCollection().AddMessageBrokerTestHarness(o => o.Broker = new BrokerOptions()), typeof(ArgumentException), "the broker's options are the app's" },
        { "clock moved back", () => new ManualTimeProvider().SetUtcNow(ManualTimeProvider.DefaultStart.AddSeconds(-1)), typeof(ArgumentOutOfRangeException), "only moves forward" },
        { "clock advanced by a negative delta", () => new ManualTimeProvider().Advance(TimeSpan.FromTicks(-1)), typeof(ArgumentOutOfRangeException), "only moves forward" },
        { "test delivery on attempt 0", () => _ = new TestDelivery<Order>(new Order(1, "tea"), attempt: 0), typeof(ArgumentOutOfRangeException), "starts at 1" },
        { "test delivery with a wildcard event", () => _ = new TestDelivery<Order>(new Order(1, "tea"), "order.*"), typeof(ArgumentException), "eventName" },
        { "test delivery with an empty queue", () => _ = new TestDelivery<Order>(new Order(1, "tea"), queue: ""), typeof(ArgumentException), "queue" },
        { "recording publisher, event with a space", () => new RecordingPublisher().PublishAsync("orders", "order created", new Order(1, "tea")).AsTask().GetAwaiter().GetResult(), typeof(ArgumentException), "eventName" },
        { "recording publisher, dead-letter queue", () => new RecordingPublisher().PublishAsync(Broker.GetDeadLetterQueueName("orders"), "x", new Order(1, "tea")).AsTask().GetAwaiter().GetResult(), typeof(ArgumentException), "queue" },
        { "recording publisher, null payload", () => new RecordingPublisher().PublishAsync<Order>("orders", "order.created", null!).AsTask().GetAwaiter().GetResult(), typeof(ArgumentNullException), "publish an empty record" },
        { "fail next zero times", () => new RecordingPublisher().FailNext(new InvalidOperationException(), 0), typeof(ArgumentOutOfRangeException), "count" },
        { "records for an invalid filter", () => new BrokerTestHarness().Records.ForEvent("a..b"), typeof(ArgumentException), "filter" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInput_GetsAClearException(string name, Action call, Type expected, string mentions)
    {
        Exception error = call.Should().Throw<Exception>(name).Which;
        error.Should().BeOfType(expected, name);
        error.Message.Should().Contain(mentions, name);
    }

    [Fact]
    public async Task PayloadOfTheWrongType_SaysBothTypes()
    {
        await using var harness = new BrokerTestHarness();
        harness.Broker.DeclareQueue<Order>("orders");
        await using Subscription subscription = await harness.SubscribeAsync<Order>("orders", ["#"], static (_, _) => ValueTask.CompletedTask);
        await harness.PublishAsync("orders", "order.created", new Order(1, "tea"));
        await harness.WaitForIdleAsync();

        Action wrong = () => harness.Published.Payloads<Shipment>();
        wrong.Should().Throw<InvalidCastException>().WithMessage("*is Order, not Shipment*");
    }
}
