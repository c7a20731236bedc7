using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Persistence;
using Xunit;

namespace MessageQueue.Tests.Persistence;

/// <summary>Messages a stopping consumer gives back, on a durable queue, across a restart on the same store.</summary>
[Trait("Guarantee", "7")]
public sealed class GivenBackTests
{
    private readonly InMemoryMessageStore _store = new(); // outlives each broker: a restart on the same store

    private Broker Start() => new(new BrokerOptions { Store = _store, Durability = Durability.Committed, ShutdownTimeout = TimeSpan.Zero });

    [Fact]
    public async Task AMessageGivenBackUnattempted_GoesOutInSequenceOrderAfterARestart_AheadOfALaterOneThatWasRead()
    {
        await using (Broker broker = Start())
        {
            var options = new SubscriptionOptions { Name = "worker", MaxInFlight = 1 };
            await using Subscription<TestEvent> first = await broker.SubscribeAsync<TestEvent>("orders", "#", options);
            await using Subscription<TestEvent> second = await broker.SubscribeAsync<TestEvent>("orders", "#", options);
            await broker.PublishAsync("orders", "order.created", new TestEvent(1));
            await broker.PublishAsync("orders", "order.created", new TestEvent(2));
            first.TryRead(out Delivery<TestEvent> one).Should().BeTrue();
            second.TryRead(out Delivery<TestEvent> two).Should().BeTrue();
            (one.Payload.Number, two.Payload.Number).Should().Be((1, 2));

            // What a stop does to a handler it cut short: message 1 goes back unattempted, and waits (the other consumer is full).
            var stopping = (IConsumer)first;
            stopping.StopDelivering();
            stopping.TakeBackInFlight().Should().Be(1);
            await broker.FlushAsync();
        }

        await using (Broker broker = Start())
        {
            await using Subscription<TestEvent> worker = await broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "worker" });
            Delivery<TestEvent> a = await worker.ReadAsync().OrHang("the first message after the restart");
            Delivery<TestEvent> b = await worker.ReadAsync().OrHang("the second message after the restart");
            new[] { (a.Payload.Number, a.Attempt), (b.Payload.Number, b.Attempt) }.Should().Equal([(1, 1), (2, 2)], "both came back, in sequence order; 1 used no attempt, 2 was read once");
        }
    }
}
