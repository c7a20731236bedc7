using FluentAssertions;
using MessageQueue.Testing.Tests.Support;
using Xunit;

namespace MessageQueue.Testing.Tests.Doubles;

/// <summary>A TestDelivery is built by hand, passed to a handler, and tells how the handler settled it.</summary>
public sealed class TestDeliveryTests
{
    [Fact]
    public async Task CarriesWhatItWasBuiltWith()
    {
        var delivery = new TestDelivery<Order>(new Order(7, "tea"), "order.created", attempt: 3, headers: new Dictionary<string, string> { ["tenant"] = "acme" }, maxDeliveries: 3, queue: "orders");

        Delivery<Order> d = delivery;
        d.Payload.Should().Be(new Order(7, "tea"));
        d.Event.Should().Be("order.created");
        d.Attempt.Should().Be(3);
        d.IsLastAttempt.Should().BeTrue();
        d.Message.Queue.Should().Be("orders");
        d.Message.Headers.Should().Contain("tenant", "acme");
        d.Message.Timestamp.Should().Be(ManualTimeProvider.DefaultStart);
        delivery.Outcome.Should().Be(DeliveryOutcome.Pending);
        (await d.AckAsync()).Should().BeTrue();
    }

    [Theory]
    [InlineData("tea", DeliveryOutcome.Acked, null, null)]
    [InlineData("", DeliveryOutcome.Rejected, null, "no item")]
    [InlineData("out-of-stock", DeliveryOutcome.Nacked, 2.0, null)]
    public async Task TellsHowTheHandlerSettledIt(string item, DeliveryOutcome outcome, double? nackMinutes, string? reason)
    {
        var delivery = new TestDelivery<Order>(new Order(1, item), "order.created", attempt: 2);

        await new ValidateOrder().HandleAsync(delivery, CancellationToken.None);

        delivery.Outcome.Should().Be(outcome);
        delivery.IsSettled.Should().BeTrue();
        delivery.NackDelay.Should().Be(nackMinutes is { } m ? TimeSpan.FromMinutes(m) : null);
        delivery.RejectReason.Should().Be(reason);
    }

    [Fact]
    public async Task FirstSettleWins_LaterOnesReturnFalse_AsWithTheBroker()
    {
        var delivery = new TestDelivery<Order>(new Order(1, "tea"));
        Delivery<Order> d = delivery.Delivery;

        (await d.ExtendAsync()).Should().BeTrue();
        (await d.ExtendAsync()).Should().BeTrue();
        (await d.NackAsync()).Should().BeTrue();
        (await d.AckAsync()).Should().BeFalse();
        (await d.RejectAsync("late")).Should().BeFalse();

        delivery.Outcome.Should().Be(DeliveryOutcome.Nacked);
        delivery.NackDelay.Should().BeNull("nacked without a delay: the subscription's backoff decides");
        delivery.Extensions.Should().Be(2);
        delivery.LateSettles.Should().Be(2);
    }

    [Fact]
    public async Task HandleWith_RunsAHostedHandlerAsTheHostDoes()
    {
        var warehouse = new Warehouse();
        var publisher = new RecordingPublisher();
        var handler = new ShipOrder(warehouse, publisher);

        var good = new TestDelivery<Order>(new Order(1, "tea"), "order.created");
        (await good.HandleWithAsync(handler)).Should().Be(DeliveryOutcome.Acked);
        good.HandlerException.Should().BeNull();

        var bad = new TestDelivery<Order>(new Order(2, ""), "order.created");
        (await bad.HandleWithAsync(handler)).Should().Be(DeliveryOutcome.Nacked);
        bad.HandlerException.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Be("Order 2 has no item.");

        warehouse.Shipped.Should().Equal(new Shipment(1, "tea"));
        publisher.Payloads<Shipment>("shipments", "order.shipped").Should().Equal(new Shipment(1, "tea"));
    }

    [Fact]
    public async Task HandleWith_AHandlerThatSettlesItself_KeepsItsOutcome()
    {
        var rejected = new TestDelivery<Order>(new Order(1, ""), "order.created");
        (await rejected.HandleWithAsync(new ValidateOrder())).Should().Be(DeliveryOutcome.Rejected);
        rejected.RejectReason.Should().Be("no item");
        rejected.LateSettles.Should().Be(0, "the host does not ack what the handler settled");
    }

    [Fact]
    public async Task ToString_NamesTheMessageTheAttemptAndTheOutcome()
    {
        var delivery = new TestDelivery<Order>(new Order(1, "tea"), "order.created", attempt: 2, queue: "orders");
        delivery.ToString().Should().Be("TestDelivery orders#1 order.created attempt 2: Pending");
        await delivery.Delivery.RejectAsync("bad");
        delivery.ToString().Should().Be("TestDelivery orders#1 order.created attempt 2: Rejected");
    }
}
