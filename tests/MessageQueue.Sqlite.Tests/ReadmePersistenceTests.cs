using System.Text.Json.Serialization;
using FluentAssertions;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Sqlite.Tests;

public sealed record Order(int Number);

public sealed record Invoice(string Customer, decimal Total);

/// <summary>Source-generated JSON, as a trimmed or native AOT application declares it.</summary>
[JsonSerializable(typeof(Invoice))]
public sealed partial class AppJsonContext : JsonSerializerContext;

/// <summary>The README's Persistence example, kept compiling and true. If this changes, change the README too.</summary>
[Trait("Guarantee", "7")]
public sealed class ReadmePersistenceTests : IDisposable
{
    private readonly TempStoreFile _file = new();

    public void Dispose() => _file.Dispose();

    [Fact]
    public async Task PersistenceExample_AsWrittenInTheReadme_KeepsDurableQueuesAcrossARestart()
    {
        await using (var broker = new Broker(new BrokerOptions
        {
            Store = new SqliteMessageStore(_file.Path),   // created if missing; locked while the broker runs
            Durability = Durability.Committed,            // the default with a store
        }))
        {
            broker.DeclareQueue<Order>("orders");                                        // durable
            broker.DeclareQueue<Order>("fast", new QueueOptions { Durability = Durability.InMemory });
            broker.DeclareQueue("invoices", AppJsonContext.Default.Invoice);            // source-generated JSON (trimming, AOT)

            foreach (string queue in new[] { "orders", "fast" })
            {
                await (await broker.SubscribeAsync<Order>(queue, "#", new SubscriptionOptions { Name = "billing" })).DisposeAsync();
                await broker.PublishAsync(queue, "order.created", new Order(1));
            }

            await (await broker.SubscribeAsync<Invoice>("invoices", "#", new SubscriptionOptions { Name = "billing" })).DisposeAsync();
            await broker.PublishAsync("invoices", "invoice.sent", new Invoice("acme", 12.50m));
        }

        await using (var broker = new Broker(new BrokerOptions { Store = new SqliteMessageStore(_file.Path) }))
        {
            broker.DeclareQueue<Order>("fast", new QueueOptions { Durability = Durability.InMemory });
            broker.DeclareQueue("invoices", AppJsonContext.Default.Invoice);
            await using Subscription<Order> orders = await broker.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { Name = "billing" });
            await using Subscription<Order> fast = await broker.SubscribeAsync<Order>("fast", "#", new SubscriptionOptions { Name = "billing" });
            await using Subscription<Invoice> invoices = await broker.SubscribeAsync<Invoice>("invoices", "#", new SubscriptionOptions { Name = "billing" });

            (await orders.ReadAsync().OrHang("the durable order")).Payload.Should().Be(new Order(1));
            (await invoices.ReadAsync().OrHang("the durable invoice")).Payload.Should().Be(new Invoice("acme", 12.50m));
            fast.TryRead(out _).Should().BeFalse("the in-memory queue kept nothing across the restart");
        }
    }

    [Fact]
    public async Task BacklogExample_AsWrittenInTheReadme_KeepsTheWindowInMemory_AndTheRestInTheFile_AcrossARestart()
    {
        const int Backlog = 10_100;
        var options = new QueueOptions
        {
            MaxMessages = 5_000_000,        // what the queue may retain, in the store
            MaxMessagesInMemory = 10_000,   // what it holds in memory (the default)
        };
        await using (var broker = new Broker(new BrokerOptions { Store = new SqliteMessageStore(_file.Path) }))
        {
            broker.DeclareQueue<Order>("orders", options);
            await (await broker.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { Name = "billing" })).DisposeAsync();
            for (int first = 1; first <= Backlog; first += 500)
            {
                await Task.WhenAll(Enumerable.Range(first, Math.Min(500, Backlog - first + 1)).Select(i => broker.PublishAsync("orders", "order.created", new Order(i)).AsTask()));
            }

            QueueSnapshot live = broker.GetSnapshot().Queues.Single(q => q.Name == "orders");
            (live.Depth, live.PagedOut).Should().Be((Backlog, 100), "10 000 in memory, the rest in the file only");
        }

        await using (var broker = new Broker(new BrokerOptions { Store = new SqliteMessageStore(_file.Path) }))
        {
            broker.DeclareQueue<Order>("orders", options);
            QueueSnapshot recovered = broker.GetSnapshot().Queues.Single(q => q.Name == "orders");
            (recovered.Depth, recovered.PagedOut).Should().Be((Backlog, 100), "a restart reads back the window only");

            await using Subscription<Order> billing = await broker.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { Name = "billing" });
            for (int i = 1; i <= Backlog; i++)
            {
                Delivery<Order> delivery = await billing.ReadAsync().OrHang($"order {i}");
                delivery.Payload.Number.Should().Be(i, "the whole backlog comes in order, across the window");
                await delivery.AckAsync();
            }

            broker.GetSnapshot().Queues.Single(q => q.Name == "orders").PagedOut.Should().Be(0);
        }
    }
}
