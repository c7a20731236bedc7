using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.DependencyInjection.Tests.Support;
using MessageQueue.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace MessageQueue.DependencyInjection.Tests.Registration;

public sealed class AddMessageBrokerTests
{
    [Fact]
    public async Task AddMessageBroker_Resolved_PublisherAndSubscriberAreTheBrokerSingleton()
    {
        await using ServiceProvider provider = new ServiceCollection().AddMessageBroker().BuildServiceProvider();

        Broker broker = provider.GetRequiredService<Broker>();
        provider.GetRequiredService<Broker>().Should().BeSameAs(broker);
        provider.GetRequiredService<IPublisher>().Should().BeSameAs(broker);
        provider.GetRequiredService<ISubscriber>().Should().BeSameAs(broker);
    }

    [Fact]
    public async Task AddMessageBroker_CalledTwice_RegistersOnceAndAppliesBothConfigurations()
    {
        var services = new ServiceCollection();
        services.AddMessageBroker(builder => builder.ConfigureBroker(options => options.AutoDeclareQueues = false));
        services.AddMessageBroker(builder => builder.DeclareQueue<Order>("orders"));

        services.Count(d => d.ServiceType == typeof(Broker)).Should().Be(1);
        services.Count(d => d.ServiceType == typeof(IPublisher)).Should().Be(1);
        services.Count(d => d.ServiceType == typeof(Microsoft.Extensions.Hosting.IHostedService)).Should().Be(1);
        await using ServiceProvider provider = services.BuildServiceProvider();
        Broker broker = provider.GetRequiredService<Broker>();

        // The first call's option: no queue is declared on first use.
        Func<Task> undeclared = async () => await broker.PublishAsync("elsewhere", "created", new Order(1, "tea"));
        await undeclared.Should().ThrowAsync<QueueNotFoundException>();

        // The second call's queue exists.
        PublishReceipt receipt = await broker.PublishAsync("orders", "created", new Order(1, "tea"));
        receipt.Queue.Should().Be("orders");
    }

    [Fact]
    public async Task DisposingTheContainer_DisposesTheBroker()
    {
        ServiceProvider provider = new ServiceCollection().AddMessageBroker().BuildServiceProvider();
        IPublisher publisher = provider.GetRequiredService<IPublisher>();
        await publisher.PublishAsync("orders", "created", new Order(1, "tea"));

        await provider.DisposeAsync();

        Func<Task> afterDispose = async () => await publisher.PublishAsync("orders", "created", new Order(2, "tea"));
        await afterDispose.Should().ThrowAsync<ObjectDisposedException>();
    }

    [Fact]
    public async Task DisposingTheContainerSynchronously_DisposesTheBroker()
    {
        IPublisher publisher;
        using (ServiceProvider provider = new ServiceCollection().AddMessageBroker().BuildServiceProvider())
        {
            publisher = provider.GetRequiredService<IPublisher>();
            await publisher.PublishAsync("orders", "created", new Order(1, "tea"));
        }

        Func<Task> afterDispose = async () => await publisher.PublishAsync("orders", "created", new Order(2, "tea"));
        await afterDispose.Should().ThrowAsync<ObjectDisposedException>();
    }

    [Fact]
    public async Task LoggerFactoryInTheContainer_IsTheBrokersLogger()
    {
        var logs = new LogSink();
        ServiceProvider provider = new ServiceCollection()
            .AddLogging(logging => logging.AddProvider(logs))
            .AddMessageBroker(b => b.DeclareQueue<Order>("orders"))
            .BuildServiceProvider();
        await provider.GetRequiredService<Broker>().PublishAsync("orders", "created", new Order(1, "tea"));

        await provider.DisposeAsync();

        logs.WithEvent(107).Should().ContainSingle("the broker logged its stop through the container's ILoggerFactory")
            .Which.Category.Should().Be("MessageQueue");
    }

    [Fact]
    [Trait("Guarantee", "8")]
    public async Task AuthorizerInTheContainer_DecidesForTheBroker_WithItsOwnInjectedServices()
    {
        await using ServiceProvider provider = new ServiceCollection()
            .AddSingleton(new TenantDirectory("ep42"))
            .AddSingleton<IBrokerAuthorizer, TenantAuthorizer>()
            .AddMessageBroker(b => b.DeclareQueue<Order>("results"))
            .BuildServiceProvider();
        Broker broker = provider.GetRequiredService<Broker>();
        await using BrokerClient known = broker.Connect("ep42");
        await using BrokerClient stranger = broker.Connect("ep41");

        await known.PublishAsync("results", "ep42.results", new Order(1, "tea"));
        Func<Task> denied = async () => await stranger.PublishAsync("results", "ep41.results", new Order(2, "tea"));

        (await denied.Should().ThrowAsync<BrokerAuthorizationException>()).Which.Message.Should().Contain("'ep41' is not a known tenant");
        broker.GetSnapshot().Queue("results").Published.Should().Be(1);
    }

    private sealed record TenantDirectory(string Tenant);

    private sealed class TenantAuthorizer(TenantDirectory directory) : IBrokerAuthorizer
    {
        public ValueTask<AuthorizationDecision> AuthorizeAsync(AuthorizationRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(request.Client == directory.Tenant ? AuthorizationDecision.Allow() : AuthorizationDecision.Deny($"'{request.Client}' is not a known tenant"));
    }

    [Fact]
    public async Task TimeProviderInTheContainer_IsTheBrokersClock()
    {
        var clock = new ManualTimeProvider(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));
        await using ServiceProvider provider = new ServiceCollection()
            .AddSingleton<TimeProvider>(clock)
            .AddMessageBroker()
            .BuildServiceProvider();
        Broker broker = provider.GetRequiredService<Broker>();
        await using Subscription<Order> subscription = await broker.SubscribeAsync<Order>("orders", "#");

        await broker.PublishAsync("orders", "created", new Order(1, "tea"));

        Delivery<Order> delivery = await subscription.ReadAsync().OrHang("the delivery");
        delivery.Message.Timestamp.Should().Be(clock.GetUtcNow());
    }

    [Fact]
    public async Task MeterFactoryInTheContainer_CreatesTheBrokersMeter()
    {
        using IHost host = TestHosts.Build(services => services.AddMetrics().AddMessageBroker(b => b.DeclareQueue<Order>("orders")));
        var factory = host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        long sent = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Meter.Name == "MessageQueue")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (instrument.Name == "messaging.client.sent.messages")
            {
                Interlocked.Add(ref sent, value);
            }
        });
        listener.Start();

        Broker broker = host.Services.GetRequiredService<Broker>();
        await using Subscription<Order> reader = await broker.SubscribeAsync<Order>("orders", "#", new SubscriptionOptions { AutoAck = true });
        await broker.PublishAsync("orders", "created", new Order(1, "tea"));
        await broker.PublishAsync("orders", "created", new Order(2, "tea"));

        Interlocked.Read(ref sent).Should().Be(2, "the broker's meter came from the container's IMeterFactory, so a listener scoped to it sees it");
    }

    [Fact]
    public async Task TimeProviderSetInTheOptions_WinsOverTheContainers()
    {
        var container = new ManualTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var chosen = new ManualTimeProvider(new DateTimeOffset(2040, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using ServiceProvider provider = new ServiceCollection()
            .AddSingleton<TimeProvider>(container)
            .AddMessageBroker(builder => builder.ConfigureBroker(options => options.TimeProvider = chosen))
            .BuildServiceProvider();
        Broker broker = provider.GetRequiredService<Broker>();
        await using Subscription<Order> subscription = await broker.SubscribeAsync<Order>("orders", "#");

        await broker.PublishAsync("orders", "created", new Order(1, "tea"));

        (await subscription.ReadAsync().OrHang("the delivery")).Message.Timestamp.Should().Be(chosen.GetUtcNow());
    }

    [Fact]
    public async Task UseSqlite_QueuesAreDurable_AMessageOutlivesTheContainer()
    {
        using var directory = new TempDirectory();
        string path = directory.File("broker.db");
        var durable = new SubscriptionOptions { Name = "billing" };

        await using (ServiceProvider first = NewProvider())
        {
            Broker broker = first.GetRequiredService<Broker>();
            await (await broker.SubscribeAsync<Order>("orders", ["#"], durable)).DisposeAsync();
            await broker.PublishAsync("orders", "created", new Order(7, "coffee"));
        }

        await using ServiceProvider second = NewProvider();
        await using Subscription<Order> subscription = await second.GetRequiredService<Broker>().SubscribeAsync<Order>("orders", ["#"], durable);
        Delivery<Order> delivery = await subscription.ReadAsync().OrHang("the message kept in SQLite");
        delivery.Payload.Should().Be(new Order(7, "coffee"));

        ServiceProvider NewProvider() => new ServiceCollection()
            .AddMessageBroker(builder => builder.DeclareQueue<Order>("orders").UseSqlite(path))
            .BuildServiceProvider();
    }

    [Fact]
    public async Task DeclareQueue_WithOptions_DeclaresItWithThemWhenTheBrokerIsCreated()
    {
        await using ServiceProvider provider = new ServiceCollection()
            .AddMessageBroker(b => b.DeclareQueue<Order>("orders", q => { q.MaxMessages = 5; q.Overflow = OverflowPolicy.Reject; }))
            .BuildServiceProvider();

        QueueSnapshot queue = provider.GetRequiredService<Broker>().GetSnapshot().Queues.Should().ContainSingle(q => q.Name == "orders").Subject;
        queue.PayloadType.Should().Be<Order>();
        queue.MaxMessages.Should().Be(5);
        queue.Overflow.Should().Be(OverflowPolicy.Reject);
    }
}
