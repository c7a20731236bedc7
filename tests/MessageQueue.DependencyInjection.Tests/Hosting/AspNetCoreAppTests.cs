using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using FluentAssertions;
using MessageQueue.ContractTests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace MessageQueue.DependencyInjection.Tests.Hosting;

/// <summary>
/// A real ASP.NET Core minimal API on Kestrel (127.0.0.1, a free port) with a real HttpClient: POST publishes an
/// order, a hosted handler consumes it, GET reads the result. The app is the README's example.
/// </summary>
public sealed class AspNetCoreAppTests
{
    [Fact]
    public async Task PostedOrder_IsPublished_HandledByAHostedHandler_AndReadBack()
    {
        await using WebApplication app = BuildApp();
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };
        app.Urls.Single().Should().StartWith("http://127.0.0.1:");

        using HttpResponseMessage posted = await http.PostAsJsonAsync("/orders", new PlaceOrder(7, "coffee"));
        posted.StatusCode.Should().Be(HttpStatusCode.Accepted);

        await app.Services.GetRequiredService<Shipments>().WaitFor(7).OrHang("the handler ships order 7");
        Shipment? shipment = await http.GetFromJsonAsync<Shipment>("/orders/7");
        shipment.Should().Be(new Shipment(7, "coffee", Attempt: 1));

        using HttpResponseMessage missing = await http.GetAsync(new Uri("/orders/8", UriKind.Relative));
        missing.StatusCode.Should().Be(HttpStatusCode.NotFound);
        await app.StopAsync();
    }

    [Fact]
    public async Task BadOrder_HandlerThrows_IsRetriedThenDeadLettered_SeenInTheSnapshot()
    {
        await using WebApplication app = BuildApp(maxDeliveries: 2);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };
        Broker broker = app.Services.GetRequiredService<Broker>();
        await using Subscription<PlaceOrder> deadLetters = await broker.SubscribeAsync<PlaceOrder>(Broker.GetDeadLetterQueueName("orders"), "#");

        using HttpResponseMessage posted = await http.PostAsJsonAsync("/orders", new PlaceOrder(9, ""));
        posted.StatusCode.Should().Be(HttpStatusCode.Accepted);

        Delivery<PlaceOrder> dead = await deadLetters.ReadAsync().OrHang("the bad order's dead letter");
        dead.Payload.Id.Should().Be(9);
        dead.Message.Headers[MessageHeaders.DeadLetterReason].Should().Be(DeadLetterReasons.MaxDeliveries);

        SubscriptionSnapshot shipping = broker.GetSnapshot().Queues.Single(q => q.Name == "orders").Subscription("shipping");
        shipping.HandlerFailures.Should().Be(2);
        shipping.DeadLettered.Should().Be(1);
        shipping.Acked.Should().Be(0);
        await app.StopAsync();
    }

    private static WebApplication BuildApp(int maxDeliveries = 10)
    {
        WebApplicationBuilder builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();

        // --- The README's example, from here ---
        builder.Services.AddSingleton<Shipments>();
        builder.Services.AddMessageBroker(broker => broker.DeclareQueue<PlaceOrder>("orders"));
        builder.Services.AddMessageHandler<ShipOrder, PlaceOrder>("orders", "placed", "shipping", handler =>
        {
            handler.Subscription.MaxDeliveries = maxDeliveries;
            handler.Subscription.RedeliveryDelays = [TimeSpan.Zero];  // (the tests retry at once)
        });

        WebApplication app = builder.Build();
        app.MapPost("/orders", async (PlaceOrder order, IPublisher publisher, CancellationToken cancellationToken) =>
        {
            await publisher.PublishAsync("orders", "placed", order, cancellationToken: cancellationToken);
            return Results.Accepted($"/orders/{order.Id}");
        });
        app.MapGet("/orders/{id:int}", (int id, Shipments shipments) =>
            shipments.Find(id) is { } shipment ? Results.Ok(shipment) : Results.NotFound());
        return app;
    }
}

public sealed record PlaceOrder(int Id, string Item);

public sealed record Shipment(int OrderId, string Item, int Attempt);

/// <summary>The handler: ships an order, in a DI scope of its own.</summary>
public sealed class ShipOrder(Shipments shipments) : IMessageHandler<PlaceOrder>
{
    public ValueTask HandleAsync(Delivery<PlaceOrder> delivery, CancellationToken cancellationToken)
    {
        PlaceOrder order = delivery.Payload;
        if (string.IsNullOrEmpty(order.Item))
        {
            throw new InvalidOperationException($"Order {order.Id} has no item.");  // nacked, retried, then dead-lettered
        }

        shipments.Add(new Shipment(order.Id, order.Item, delivery.Attempt));
        return ValueTask.CompletedTask;
    }
}

/// <summary>What has shipped; a singleton the GET endpoint reads.</summary>
public sealed class Shipments
{
    private readonly ConcurrentDictionary<int, Shipment> _shipped = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource> _waiting = new();

    public void Add(Shipment shipment)
    {
        _shipped[shipment.OrderId] = shipment;
        Signal(shipment.OrderId).TrySetResult();
    }

    public Shipment? Find(int id) => _shipped.GetValueOrDefault(id);

    /// <summary>For the tests: completes once the order has shipped.</summary>
    public Task WaitFor(int id) => Signal(id).Task;

    private TaskCompletionSource Signal(int id) =>
        _waiting.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}
