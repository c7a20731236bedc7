using FluentAssertions;
using MessageQueue.Testing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace MessageQueue.Testing.Tests.Hosting;

/// <summary>
/// An app's registration, as the app writes it (SQLite store, hosted handler), tested end to end by swapping in the
/// harness with one line, in a real Generic Host.
/// </summary>
public sealed class HarnessInAHostTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("mq-harness-").FullName;

    /// <summary>The app's own registration, unchanged by the tests.</summary>
    private void AddApp(IServiceCollection services)
    {
        services.AddSingleton<Warehouse>();
        services.AddMessageBroker(broker => broker
            .DeclareQueue<Order>("orders")
            .DeclareQueue<Shipment>("shipments")
            .UseSqlite(Path.Combine(_directory, "app.db")));
        services.AddMessageHandler<ShipOrder, Order>("orders", "order.*", "shipping");
    }

    [Fact]
    public async Task TheAppsHandler_RunsAsRegistered_AndTheHarnessKnowsWhenItIsDone()
    {
        using IHost host = BuildHost();
        await host.StartAsync();
        BrokerTestHarness harness = host.Services.GetRequiredService<BrokerTestHarness>();
        IPublisher publisher = host.Services.GetRequiredService<IPublisher>();

        for (int i = 1; i <= 5; i++)
        {
            await publisher.PublishAsync("orders", "order.created", new Order(i, "tea"));
        }

        await harness.WaitForIdleAsync();

        host.Services.GetRequiredService<Warehouse>().Shipped.Select(s => s.OrderId).Should().Equal(1, 2, 3, 4, 5);
        harness.Acked.ForQueue("orders").ForSubscription("shipping").Count.Should().Be(5);
        harness.Published.ForQueue("shipments").Payloads<Shipment>().Select(s => s.OrderId).Should().Equal(1, 2, 3, 4, 5);
        File.Exists(Path.Combine(_directory, "app.db")).Should().BeFalse("the harness runs the app's queues in memory");
        await host.StopAsync();
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task TheAppsHandler_Failing_IsRetriedOnTheClock_ThenDeadLettered()
    {
        using IHost host = BuildHost();
        await host.StartAsync();
        BrokerTestHarness harness = host.Services.GetRequiredService<BrokerTestHarness>();

        await harness.PublishAsync("orders", "order.created", new Order(1, ""));
        await harness.AdvanceTimeAsync(TimeSpan.FromHours(1));
        await harness.WaitForIdleAsync();

        harness.Delivered.ForSubscription("shipping").Count.Should().Be(10, "MaxDeliveries is 10 by default");
        harness.Nacked.Should().HaveCount(10).And.AllSatisfy(r => r.Reason.Should().Be("Order 1 has no item."));
        harness.DeadLettered.Should().ContainSingle().Which.Reason.Should().Be(DeadLetterReasons.MaxDeliveries);
        harness.Broker.GetSnapshot().Queue("orders").Subscription("shipping").HandlerFailures.Should().Be(10);
        host.Services.GetRequiredService<Warehouse>().Shipped.Should().BeEmpty();
        await host.StopAsync();
    }

    [Fact]
    public async Task TheContainersClock_IsTheHarnesss()
    {
        using IHost host = BuildHost();
        BrokerTestHarness harness = host.Services.GetRequiredService<BrokerTestHarness>();

        host.Services.GetRequiredService<TimeProvider>().Should().BeSameAs(harness.Time);
        host.Services.GetRequiredService<ManualTimeProvider>().Should().BeSameAs(harness.Time);
        harness.Broker.Should().BeSameAs(host.Services.GetRequiredService<Broker>());
        await harness.DisposeAsync();

        // The container owns the broker: disposing the harness leaves it working.
        PublishReceipt receipt = await host.Services.GetRequiredService<IPublisher>().PublishAsync("orders", "order.created", new Order(2, "tea"));
        receipt.Sequence.Should().Be(1);
    }

    [Fact]
    public void CalledTwice_RegistersOneHarness()
    {
        var services = new ServiceCollection();
        AddApp(services);
        services.AddMessageBrokerTestHarness().AddMessageBrokerTestHarness();
        services.Count(d => d.ServiceType == typeof(BrokerTestHarness)).Should().Be(1);
    }

    [Fact]
    public async Task TwoContainersFromTheSameServices_HaveHarnessesThatShareNothing()
    {
        var services = new ServiceCollection();
        AddApp(services);
        services.AddMessageBrokerTestHarness();
        await using ServiceProvider first = services.BuildServiceProvider();
        await using ServiceProvider second = services.BuildServiceProvider();
        BrokerTestHarness one = first.GetRequiredService<BrokerTestHarness>();
        BrokerTestHarness two = second.GetRequiredService<BrokerTestHarness>();

        await one.PublishAsync("orders", "order.created", new Order(1, "tea"));
        one.Time.Advance(TimeSpan.FromMinutes(1));

        two.Time.Should().NotBeSameAs(one.Time);
        two.Time.GetUtcNow().Should().Be(ManualTimeProvider.DefaultStart, "moving one container's clock leaves the other's alone");
        two.Published.Should().BeEmpty("each container records only its own broker");
        one.Published.Should().ContainSingle();
    }

    private IHost BuildHost()
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        AddApp(builder.Services);
        builder.Services.AddMessageBrokerTestHarness();
        return builder.Build();
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
