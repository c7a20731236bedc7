using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.DependencyInjection.Tests.Support;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace MessageQueue.DependencyInjection.Tests.Transports;

/// <summary>
/// UseTransport with a transport built on the core's public API only (<see cref="LoopbackTransport"/>): the seam a
/// transport outside this repository plugs into, with hosted handlers running on it as they run on the broker.
/// </summary>
public sealed class UseTransportTests
{
    private readonly Recorder _recorder = new();
    private readonly LogSink _logs = new();

    [Fact]
    public async Task HostedHandler_OnATransportBuiltOnThePublicApi_HandlesAndAcksEveryMessageInOrder()
    {
        using IHost host = Build(services => services.AddMessageHandler<OrderHandler, Order>("orders", "#"));
        await host.StartAsync();
        var transport = host.Services.GetRequiredService<LoopbackTransport>();
        host.Services.GetRequiredService<IPublisher>().Should().BeSameAs(transport);
        host.Services.GetRequiredService<ISubscriber>().Should().BeSameAs(transport);

        for (int i = 1; i <= 5; i++)
        {
            await host.Services.GetRequiredService<IPublisher>().PublishAsync("orders", "created", new Order(i, "tea"));
        }

        // The scope ends after the host's ack, so once the fifth is disposed all five acks were sent.
        await _recorder.WaitForDisposedScopes(5).OrHang("five messages handled on the transport");
        _recorder.Calls.Select(c => c.OrderId).Should().Equal([1, 2, 3, 4, 5], "MaxConcurrency 1 keeps the order");
        transport.Acked.Should().Be(5);
        transport.Nacked.Should().Be(0);
        await host.StopAsync().OrHang("the stop");
        _logs.WithEvent(12).Should().ContainSingle("the stop is logged as on another transport").Which.Message.Should().Contain("5 messages handled");
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task HostedHandler_ThrowingOnATransport_IsNackedOnEachAttempt_AndTheLastAttemptIsLoggedAsSuch()
    {
        using IHost host = Build(services => services.AddMessageHandler<FailingHandler, Order>("orders", "#", "billing", h =>
        {
            h.Subscription.MaxDeliveries = 3;
            h.Subscription.RedeliveryDelays = [];
        }));
        await host.StartAsync();
        var transport = host.Services.GetRequiredService<LoopbackTransport>();

        await transport.PublishAsync("orders", "created", new Order(1, "tea"));

        await _logs.WaitForEvent(3).OrHang("the handler's failure on the last attempt");
        _recorder.Calls.Select(c => c.Attempt).Should().Equal([1, 2, 3]);
        transport.Nacked.Should().Be(3);
        transport.DeadLettered.Should().Be(1);
        transport.Acked.Should().Be(0);
        _logs.WithEvent(2).Should().HaveCount(2, "attempts 1 and 2 are delivered again");
        await host.StopAsync().OrHang("the stop");
    }

    [Fact]
    public async Task HostedHandler_OnATransport_RecordsItsProcessDuration_TaggedWithTheTransportsSystem()
    {
        using IHost host = Build(services =>
        {
            services.AddMetrics();
            services.AddMessageHandler<OrderHandler, Order>("orders", "#", "fulfilment");
        });
        using var durations = new MetricCollector<double>(host.Services.GetRequiredService<IMeterFactory>(), BrokerDiagnostics.MeterName, "messaging.process.duration");
        await host.StartAsync();

        await host.Services.GetRequiredService<LoopbackTransport>().PublishAsync("orders", "created", new Order(1, "tea"));

        await durations.WaitForMeasurementsAsync(1).OrHang("the handler call's duration");
        CollectedMeasurement<double> measured = durations.GetMeasurementSnapshot().Should().ContainSingle().Subject;
        measured.Tags.Should().Contain("messaging.system", "loopback");
        measured.Tags.Should().Contain("messaging.destination.name", "orders");
        measured.Tags.Should().Contain("messaging.destination.subscription.name", "fulfilment");
        measured.Tags.Should().Contain("messaging.operation.name", "process");
        measured.Tags.Should().NotContainKey("error.type");
        await host.StopAsync().OrHang("the stop");
    }

    [Fact]
    public async Task TheContainer_DisposesTheTransport()
    {
        LoopbackTransport transport;
        using (IHost host = Build(services => services.AddMessageHandler<OrderHandler, Order>("orders", "#")))
        {
            await host.StartAsync();
            transport = host.Services.GetRequiredService<LoopbackTransport>();
            await host.StopAsync().OrHang("the stop");
        }

        transport.IsDisposed.Should().BeTrue();
    }

    [Fact]
    public async Task QueuesDeclaredInCode_AreDeclaredOnTheTransport_WhenTheHostStarts()
    {
        var transport = new LoopbackTransport();
        using IHost host = TestHosts.Build(services => services.AddMessageBroker(b => b.UseTransport(_ => transport).DeclareQueue<Order>("orders").DeclareQueue<string>("audit")), _logs);

        transport.Declared.Should().BeEmpty("nothing is declared before the host starts");
        await host.StartAsync();

        transport.Declared.Should().Equal("orders", "audit");
        await host.StopAsync().OrHang("the stop");
    }

    [Fact]
    public void QueueOptions_OnATransport_AreAStartUpError_NamingTheQueue()
    {
        // QueueOptions bound the in-memory broker's queues; a transport's queues follow the server's policies, so options
        // given for one would be silently ignored.
        using IHost host = TestHosts.Build(services => services.AddMessageBroker(b => b.UseTransport(_ => new LoopbackTransport()).DeclareQueue<Order>("orders", q => q.MaxMessages = 5)), _logs);

        Action validate = () => host.Services.GetRequiredService<Microsoft.Extensions.Options.IStartupValidator>().Validate();

        validate.Should().Throw<Microsoft.Extensions.Options.OptionsValidationException>().Which.Message.Should()
            .Contain("Queue 'orders'").And.Contain("QueueOptions").And.Contain("transport (UseTransport)").And.Contain("DeclareQueue<Order>(\"orders\")");
    }

    [Fact]
    public void QueueSettingsFromConfiguration_OnATransport_AreAStartUpError_Too()
    {
        // The same queue options, bound from configuration instead of set in code, would be ignored just the same.
        using IHost host = TestHosts.Build(
            services => services.AddMessageBroker(b => b.UseTransport(_ => new LoopbackTransport()).DeclareQueue<Order>("orders").BindConfiguration()),
            _logs,
            new Dictionary<string, string?> { ["MessageQueue:Queues:orders:MaxMessages"] = "5" });

        Action validate = () => host.Services.GetRequiredService<Microsoft.Extensions.Options.IStartupValidator>().Validate();

        validate.Should().Throw<Microsoft.Extensions.Options.OptionsValidationException>().Which.Failures.Should().ContainSingle()
            .Which.Should().Contain("Queue 'orders' has QueueOptions").And.Contain("set its limits on the server");
    }

    private IHost Build(Action<IServiceCollection> configure) => TestHosts.Build(
        services =>
        {
            services.AddSingleton(_recorder);
            services.AddScoped<ScopedContext>();
            services.AddMessageBroker(b => b.UseTransport(_ => new LoopbackTransport()));
            configure(services);
        },
        _logs);
}
