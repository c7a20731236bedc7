using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.DependencyInjection.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MessageQueue.DependencyInjection.Tests.Options;

public sealed class ConfigurationAndValidationTests
{
    [Fact]
    public async Task BindConfiguration_ReadsBrokerAndQueueSettings()
    {
        var settings = new Dictionary<string, string?>
        {
            ["MessageQueue:AutoDeclareQueues"] = "false",
            ["MessageQueue:MaxQueues"] = "8",
            ["MessageQueue:ShutdownTimeout"] = "00:00:05",
            ["MessageQueue:MaxHeadersLength"] = "10",
            ["MessageQueue:Queues:orders:MaxMessages"] = "2",
            ["MessageQueue:Queues:orders:Overflow"] = "Reject",
        };
        using IHost host = TestHosts.Build(
            services => services.AddMessageBroker(b => b.DeclareQueue<Order>("orders").BindConfiguration()),
            configuration: settings);
        Broker broker = host.Services.GetRequiredService<Broker>();

        QueueSnapshot orders = broker.GetSnapshot().Queues.Single(q => q.Name == "orders");
        orders.MaxMessages.Should().Be(2);
        orders.Overflow.Should().Be(OverflowPolicy.Reject);

        await using Subscription<Order> subscription = await broker.SubscribeAsync<Order>("orders", "#");
        await broker.PublishAsync("orders", "created", new Order(1, "tea"));
        await broker.PublishAsync("orders", "created", new Order(2, "tea"));
        Func<Task> third = async () => await broker.PublishAsync("orders", "created", new Order(3, "tea"));
        await third.Should().ThrowAsync<QueueFullException>("MaxMessages 2 and Overflow Reject came from configuration");

        Func<Task> undeclared = async () => await broker.PublishAsync("other", "created", new Order(4, "tea"));
        await undeclared.Should().ThrowAsync<QueueNotFoundException>("AutoDeclareQueues false came from configuration");

        Func<Task> bigHeaders = async () => await broker.PublishAsync("orders", "created", new Order(5, "tea"), new PublishOptions { Headers = new Dictionary<string, string> { ["tenant"] = "acme-corp" } });
        (await bigHeaders.Should().ThrowAsync<ArgumentException>("MaxHeadersLength 10 came from configuration")).Which.Message.Should().Contain("MaxHeadersLength allows 10");
    }

    [Fact]
    [Trait("Guarantee", "8")]
    public async Task BindConfiguration_ReadsAuthorizationRules()
    {
        var settings = new Dictionary<string, string?>
        {
            ["MessageQueue:AuthorizationRules:0:Client"] = "*",
            ["MessageQueue:AuthorizationRules:0:Operation"] = "Publish",
            ["MessageQueue:AuthorizationRules:0:Queue"] = "results",
            ["MessageQueue:AuthorizationRules:0:Event"] = "{client}.results",
            ["MessageQueue:AuthorizationRules:1:Client"] = "service",
            ["MessageQueue:AuthorizationRules:1:Operation"] = "Subscribe",
            ["MessageQueue:AuthorizationRules:1:Effect"] = "Allow",
            ["MessageQueue:AuthorizationRules:1:Queue"] = "results",
            ["MessageQueue:AuthorizationRules:1:Event"] = "*.results",
        };
        using IHost host = TestHosts.Build(
            services => services.AddMessageBroker(b => b.DeclareQueue<Order>("results").BindConfiguration()),
            configuration: settings);
        Broker broker = host.Services.GetRequiredService<Broker>();
        await using BrokerClient ep42 = broker.Connect("ep42");
        await using BrokerClient service = broker.Connect("service");

        await using Subscription<Order> all = await service.SubscribeAsync<Order>("results", "*.results");
        await ep42.PublishAsync("results", "ep42.results", new Order(1, "tea"));
        Func<Task> other = async () => await ep42.PublishAsync("results", "ep41.results", new Order(2, "tea"));
        await other.Should().ThrowAsync<BrokerAuthorizationException>();
        (await all.ReadAsync().OrHang("ep42's own result, for the service")).Payload.Id.Should().Be(1);
    }

    [Fact]
    public void BindConfiguration_BadAuthorizationRules_AreAllReported()
    {
        var settings = new Dictionary<string, string?>
        {
            ["MessageQueue:AuthorizationRules:0:Client"] = "*",
            ["MessageQueue:AuthorizationRules:0:Operation"] = "Read",
            ["MessageQueue:AuthorizationRules:0:Queue"] = "results",
            ["MessageQueue:AuthorizationRules:0:Event"] = "#",
            ["MessageQueue:AuthorizationRules:1:Client"] = "*",
            ["MessageQueue:AuthorizationRules:1:Operation"] = "Publish",
            ["MessageQueue:AuthorizationRules:1:Effect"] = "Maybe",
            ["MessageQueue:AuthorizationRules:1:Queue"] = "results",
            ["MessageQueue:AuthorizationRules:1:Evnt"] = "#",
            ["MessageQueue:AuthorizationRules:2:Client"] = "*",
            ["MessageQueue:AuthorizationRules:2:Operation"] = "Publish",
            ["MessageQueue:AuthorizationRules:2:Queue"] = "results",
            ["MessageQueue:AuthorizationRules:2:Event"] = "a..b",
        };
        using IHost host = TestHosts.Build(services => services.AddMessageBroker(b => b.BindConfiguration()), configuration: settings);

        Action resolve = () => host.Services.GetRequiredService<Broker>();
        OptionsValidationException error = resolve.Should().Throw<OptionsValidationException>().Which;
        error.Message.Should().Contain("MessageQueue:AuthorizationRules:0:Operation: 'Read' is not an operation; use Publish or Subscribe.");
        error.Message.Should().Contain("MessageQueue:AuthorizationRules:1:Effect: 'Maybe' is not an effect; use Allow or Deny.");
        error.Message.Should().Contain("MessageQueue:AuthorizationRules:1:Evnt: an authorization rule has no setting 'Evnt'");
        error.Message.Should().Contain("MessageQueue:AuthorizationRules:1: the authorization rule has no Event.");
        error.Message.Should().Contain("AllowPublish(*, results, a..b): the event pattern is not valid");
    }

    [Fact]
    public void BindConfiguration_CustomSectionPath_IsRead()
    {
        using IHost host = TestHosts.Build(
            services => services.AddMessageBroker(b => b.DeclareQueue<Order>("orders").BindConfiguration("Messaging:Broker")),
            configuration: new Dictionary<string, string?> { ["Messaging:Broker:Queues:orders:MaxMessages"] = "3" });

        host.Services.GetRequiredService<Broker>().GetSnapshot().Queues.Single(q => q.Name == "orders").MaxMessages.Should().Be(3);
    }

    [Fact]
    public void LaterConfiguration_WinsOverEarlier()
    {
        using IHost host = TestHosts.Build(
            services => services.AddMessageBroker(b => b
                .BindConfiguration()
                .DeclareQueue<Order>("orders", q => q.MaxMessages = 9)),
            configuration: new Dictionary<string, string?> { ["MessageQueue:Queues:orders:MaxMessages"] = "3" });

        host.Services.GetRequiredService<Broker>().GetSnapshot().Queues.Single(q => q.Name == "orders").MaxMessages.Should().Be(9);
    }

    [Fact]
    public async Task HostStart_WithInvalidSettings_ReportsEveryProblemInOneOptionsValidationException()
    {
        var settings = new Dictionary<string, string?>
        {
            ["MessageQueue:MaxQueues"] = "0",                          // 1: out of range
            ["MessageQueue:MaxQueus"] = "5",                           // 2: unknown key (a typo)
            ["MessageQueue:ShutdownTimeout"] = "soon",                 // 3: not a time span
            ["MessageQueue:Queues:orders:MaxMessages"] = "-1",         // 4: out of range
            ["MessageQueue:Queues:orders:Overflow"] = "Explode",       // 5: not an OverflowPolicy
            ["MessageQueue:Queues:ghost:MaxMessages"] = "10",          // 6: configured, never declared in code
        };
        using IHost host = TestHosts.Build(
            services =>
            {
                services.AddMessageBroker(b => b.DeclareQueue<Order>("orders").BindConfiguration());
                services.AddMessageHandler<OrderHandler, Order>("orders", "#", configure: h =>
                {
                    h.MaxConcurrency = 0;                                // 7
                    h.HandlerTimeout = TimeSpan.FromMinutes(5);          // 8: longer than the ack deadline
                    h.Subscription.AckTimeout = TimeSpan.FromMinutes(1);
                });
                services.AddMessageHandler<InvoiceHandler, Invoice>("orders", "#", "invoices");  // 9: wrong payload type
            },
            configuration: settings);

        Func<Task> start = () => host.StartAsync();

        OptionsValidationException error = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        error.Failures.Should().HaveCount(9, string.Join(Environment.NewLine, error.Failures));
        error.Failures.Should().ContainSingle(f => f.Contains("MaxQueues is 0", StringComparison.Ordinal));
        error.Failures.Should().ContainSingle(f => f.Contains("MessageQueue:MaxQueus", StringComparison.Ordinal) && f.Contains("has no setting", StringComparison.Ordinal));
        error.Failures.Should().ContainSingle(f => f.Contains("MessageQueue:ShutdownTimeout", StringComparison.Ordinal) && f.Contains("'soon' is not a valid time span", StringComparison.Ordinal));
        error.Failures.Should().ContainSingle(f => f.Contains("Queue 'orders'", StringComparison.Ordinal) && f.Contains("MaxMessages is -1", StringComparison.Ordinal));
        error.Failures.Should().ContainSingle(f => f.Contains("'Explode' is not a valid OverflowPolicy", StringComparison.Ordinal));
        error.Failures.Should().ContainSingle(f => f.Contains("Queue 'ghost'", StringComparison.Ordinal) && f.Contains("DeclareQueue<TPayload>(\"ghost\")", StringComparison.Ordinal));
        error.Failures.Should().ContainSingle(f => f.Contains("MaxConcurrency is 0", StringComparison.Ordinal));
        error.Failures.Should().ContainSingle(f => f.Contains("HandlerTimeout", StringComparison.Ordinal) && f.Contains("longer than Subscription.AckTimeout", StringComparison.Ordinal));
        error.Failures.Should().ContainSingle(f => f.Contains("Handler InvoiceHandler", StringComparison.Ordinal) && f.Contains("takes Invoice but the queue is declared with payload type Order", StringComparison.Ordinal));
    }

    [Fact]
    public async Task HandlerOnAQueueTheBrokerCannotDeclare_IsReportedAtStart()
    {
        using IHost host = TestHosts.Build(services =>
        {
            services.AddSingleton(new Recorder());
            services.AddScoped<ScopedContext>();
            services.AddMessageBroker(b => b.DeclareQueue<Order>("orders").ConfigureBroker(o => o.AutoDeclareQueues = false));
            services.AddMessageHandler<OrderHandler, Order>("orders", "#");                                  // fine: declared
            services.AddMessageHandler<OrderHandler, Order>("orders.$dlq", "#", "dead");                     // fine: its source is declared
            services.AddMessageHandler<InvoiceHandler, Invoice>("invoices", "#");                            // 1: not declared, none on first use
        });

        Func<Task> start = () => host.StartAsync();

        OptionsValidationException error = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        error.Failures.Should().ContainSingle(string.Join(Environment.NewLine, error.Failures)).Which.Should().Be(
            "Handler InvoiceHandler on queue 'invoices': queue 'invoices' is not declared and BrokerOptions.AutoDeclareQueues is false, so the handler could not subscribe; declare it with DeclareQueue<Invoice>(\"invoices\") in AddMessageBroker.");
    }

    [Fact]
    public async Task TwoHandlersOfAQueueDeclaredOnFirstUse_WithDifferentPayloadTypes_AreReportedAtStart()
    {
        using IHost host = TestHosts.Build(services =>
        {
            services.AddSingleton(new Recorder());
            services.AddScoped<ScopedContext>();
            services.AddMessageHandler<OrderHandler, Order>("billing", "#");
            services.AddMessageHandler<InvoiceHandler, Invoice>("billing", "#");
        });

        Func<Task> start = () => host.StartAsync();

        OptionsValidationException error = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        error.Failures.Should().ContainSingle(string.Join(Environment.NewLine, error.Failures)).Which.Should().Contain(
            "Handler InvoiceHandler on queue 'billing': the handler takes Invoice but handler OrderHandler takes Order from the same queue 'billing'");
    }

    [Fact]
    public void ResolvingTheBrokerWithoutAHost_WithInvalidOptions_ThrowsTheSameValidationException()
    {
        using ServiceProvider provider = new ServiceCollection()
            .AddMessageBroker(b => b.ConfigureBroker(o => { o.MaxQueues = 0; o.MaxStoreBatch = 0; }))
            .BuildServiceProvider();

        Action resolve = () => provider.GetRequiredService<Broker>();

        resolve.Should().Throw<OptionsValidationException>().Which.Failures.Should().HaveCount(2);
    }

    [Fact]
    public void QueueDeclaredTwiceWithDifferentPayloadTypes_IsReported()
    {
        using ServiceProvider provider = new ServiceCollection()
            .AddMessageBroker(b => b.DeclareQueue<Order>("orders").DeclareQueue<Invoice>("orders"))
            .BuildServiceProvider();

        Action resolve = () => provider.GetRequiredService<Broker>();

        resolve.Should().Throw<OptionsValidationException>().Which.Failures.Should().ContainSingle()
            .Which.Should().Contain("declared twice, with payload types Order and Invoice");
    }

    [Fact]
    public void BindConfiguration_WithoutAnIConfiguration_SaysHowToRegisterOne()
    {
        using ServiceProvider provider = new ServiceCollection().AddMessageBroker(b => b.BindConfiguration()).BuildServiceProvider();

        Action resolve = () => provider.GetRequiredService<Broker>();

        resolve.Should().Throw<OptionsValidationException>().Which.Failures.Should().ContainSingle()
            .Which.Should().Contain("needs an IConfiguration").And.Contain("AddSingleton<IConfiguration>");
    }

    [Fact]
    public void ASettingThatConfigurationCannotHold_IsReportedWithTheSettingsItCan()
    {
        using IHost host = TestHosts.Build(
            services => services.AddMessageBroker(b => b.BindConfiguration()),
            configuration: new Dictionary<string, string?> { ["MessageQueue:Store"] = "broker.db" });

        Action resolve = () => host.Services.GetRequiredService<Broker>();

        resolve.Should().Throw<OptionsValidationException>().Which.Failures.Should().ContainSingle()
            .Which.Should().Contain("BrokerOptions.Store cannot be set from configuration").And.Contain("MaxQueues");
    }

    [Fact]
    public async Task DurabilityWithoutAStore_IsReported_ButNotWhenUseSqliteGivesOne()
    {
        using ServiceProvider without = new ServiceCollection()
            .AddMessageBroker(b => b.ConfigureBroker(o => o.Durability = Durability.Fsync))
            .BuildServiceProvider();
        Action resolve = () => without.GetRequiredService<Broker>();
        resolve.Should().Throw<OptionsValidationException>().Which.Failures.Should().ContainSingle()
            .Which.Should().Contain("there is no Store");

        using var directory = new TempDirectory();
        await using ServiceProvider with = new ServiceCollection()
            .AddMessageBroker(b => b.ConfigureBroker(o => o.Durability = Durability.Fsync).UseSqlite(directory.File("broker.db")))
            .BuildServiceProvider();
        with.GetRequiredService<Broker>().Should().NotBeNull();
    }
}
