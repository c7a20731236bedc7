using MessageQueue.DependencyInjection;

namespace MessageQueue.Testing.Tests.Support;

// A small app, written as a user would write it, that the tests exercise with the doubles.

public sealed record Order(int Id, string Item);

public sealed record Shipment(int OrderId, string Item);

/// <summary>Code that only publishes: the kind of class a RecordingPublisher tests.</summary>
public sealed class Checkout(IPublisher publisher)
{
    /// <summary>Publishes the order; when the queue is full, says so instead of throwing.</summary>
    public async Task<string> PlaceAsync(Order order, CancellationToken cancellationToken = default)
    {
        try
        {
            await publisher.PublishAsync("orders", "order.created", order, new PublishOptions { Headers = new Dictionary<string, string> { ["source"] = "web" } }, cancellationToken);
            return "accepted";
        }
        catch (QueueFullException)
        {
            return "busy, try again later";
        }
    }
}

/// <summary>Where shipped orders go; a singleton the handler writes to.</summary>
public sealed class Warehouse
{
    private readonly List<Shipment> _shipped = [];

    public IReadOnlyList<Shipment> Shipped
    {
        get
        {
            lock (_shipped)
            {
                return [.. _shipped];
            }
        }
    }

    public void Ship(Shipment shipment)
    {
        lock (_shipped)
        {
            _shipped.Add(shipment);
        }
    }
}

/// <summary>A hosted handler: ships an order, publishes order.shipped, and fails on an order with no item.</summary>
public sealed class ShipOrder(Warehouse warehouse, IPublisher publisher) : IMessageHandler<Order>
{
    public async ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
    {
        Order order = delivery.Payload;
        if (string.IsNullOrEmpty(order.Item))
        {
            throw new InvalidOperationException($"Order {order.Id} has no item.");
        }

        warehouse.Ship(new Shipment(order.Id, order.Item));
        await publisher.PublishAsync("shipments", "order.shipped", new Shipment(order.Id, order.Item), cancellationToken: cancellationToken);
    }
}

/// <summary>A handler that settles deliveries itself: rejects orders for nothing, asks for a later retry when the item is out of stock.</summary>
public sealed class ValidateOrder : IMessageHandler<Order>
{
    public async ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
    {
        switch (delivery.Payload.Item)
        {
            case "":
                await delivery.RejectAsync("no item", cancellationToken);
                break;
            case "out-of-stock":
                await delivery.NackAsync(TimeSpan.FromMinutes(delivery.Attempt), cancellationToken);
                break;
            default:
                await delivery.AckAsync(cancellationToken);
                break;
        }
    }
}
