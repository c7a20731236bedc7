using System.Threading.Channels;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.DependencyInjection;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace MessageQueue.RabbitMQ.Tests;

/// <summary>UseRabbitMq: the one-line switch, in a real Generic Host with a hosted handler.</summary>
public sealed class HostingTests
{
    [RabbitMqFact]
    public async Task UseRabbitMq_HostedHandlerConsumesWhatTheAppPublishes_OnRabbitMq()
    {
        string queue = "hosted-" + Guid.NewGuid().ToString("N");
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        var logs = new LogSink();
        builder.Logging.AddProvider(logs);
        builder.Services.AddSingleton<Handled>();
        builder.Services.AddMessageBroker(broker => broker.UseRabbitMq(RabbitMqServer.ConnectionString));
        builder.Services.AddMessageHandler<RecordingHandler, TestEvent>(queue, "order.*", "billing");
        using IHost host = builder.Build();
        using var durations = new MetricCollector<double>(host.Services.GetRequiredService<IMeterFactory>(), BrokerDiagnostics.MeterName, "messaging.process.duration");
        await host.StartAsync();

        host.Services.GetRequiredService<IPublisher>().Should().BeOfType<RabbitMqTransport>("UseRabbitMq switched the publisher");
        host.Services.GetRequiredService<ISubscriber>().Should().BeSameAs(host.Services.GetRequiredService<IPublisher>());
        IPublisher publisher = host.Services.GetRequiredService<IPublisher>();
        for (int i = 1; i <= 5; i++)
        {
            await publisher.PublishAsync(queue, "order.created", new TestEvent(i));
        }

        Handled handled = host.Services.GetRequiredService<Handled>();
        var numbers = new List<int>();
        for (int i = 0; i < 5; i++)
        {
            numbers.Add(await handled.Reader.ReadAsync().AsTask().OrHang($"handled message {i + 1}"));
        }

        numbers.Should().Equal([1, 2, 3, 4, 5], "one at a time, in order (MaxConcurrency 1)");

        // Each call's duration, as in memory, tagged with RabbitMQ as the messaging system.
        await durations.WaitForMeasurementsAsync(5).OrHang("five handler calls' durations");
        durations.GetMeasurementSnapshot().Should().HaveCount(5).And.OnlyContain(m =>
            (string?)m.Tags["messaging.system"] == "rabbitmq" && (string?)m.Tags["messaging.destination.name"] == queue && (string?)m.Tags["messaging.destination.subscription.name"] == "billing");
        await host.StopAsync();

        // Only the transport carries messages: the in-memory broker was never created (it logs its start when it is).
        logs.WithEvent(108).Should().BeEmpty();
        logs.WithEvent(8).Should().ContainSingle("the hosted handlers started");

        // The transport does not count what it had prefetched, so the stop log says only what it knows.
        logs.WithEvent(5).Should().BeEmpty();
        logs.WithEvent(12).Should().ContainSingle().Which.Message.Should()
            .Be("Handler RecordingHandler stopped: 5 messages handled; 0 unfinished messages, and any the transport had prefetched, went back to subscription 'billing'");
    }

    [RabbitMqFact]
    public async Task UseRabbitMq_AQueueDeclaredInCode_ExistsOnTheServerOnceTheHostStarted()
    {
        string queue = "declared-" + Guid.NewGuid().ToString("N");
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddMessageBroker(broker => broker.UseRabbitMq(RabbitMqServer.ConnectionString).DeclareQueue<TestEvent>(queue));
        using IHost host = builder.Build();

        var factory = new global::RabbitMQ.Client.ConnectionFactory { Uri = new Uri(RabbitMqServer.ConnectionString) };
        await using global::RabbitMQ.Client.IConnection connection = await factory.CreateConnectionAsync();
        async Task<bool> ExistsAsync()
        {
            // A passive declare fails (and closes its channel) when the exchange is not there.
            await using global::RabbitMQ.Client.IChannel channel = await connection.CreateChannelAsync();
            try
            {
                await channel.ExchangeDeclarePassiveAsync(queue);
                return true;
            }
            catch (global::RabbitMQ.Client.Exceptions.OperationInterruptedException)
            {
                return false;
            }
        }

        (await ExistsAsync()).Should().BeFalse("nothing declared the queue before the host started");
        await host.StartAsync();

        (await ExistsAsync()).Should().BeTrue("DeclareQueue<T> declares the queue on RabbitMQ when the host starts");
        await host.StopAsync();
    }

    [Fact]
    public void UseRabbitMq_HandlersOfOneUndeclaredQueueWithDifferentTypes_PassTheStartUpValidation()
    {
        // The in-memory broker allows one payload type per queue and, with AutoDeclareQueues off, no undeclared queue.
        // On RabbitMQ a queue is an exchange and each subscription reads its own type: neither rule applies.
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<Handled>();
        builder.Services.AddMessageBroker(broker => broker.ConfigureBroker(o => o.AutoDeclareQueues = false).UseRabbitMq(RabbitMqServer.ConnectionString));
        builder.Services.AddMessageHandler<RecordingHandler, TestEvent>("events", "#", "numbers");
        builder.Services.AddMessageHandler<TextHandler, string>("events", "#", "texts");
        using IHost host = builder.Build();

        Action validate = () => host.Services.GetRequiredService<Microsoft.Extensions.Options.IStartupValidator>().Validate();

        validate.Should().NotThrow();
    }

    private sealed class TextHandler : IMessageHandler<string>
    {
        public ValueTask HandleAsync(Delivery<string> delivery, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    private sealed class Handled
    {
        private readonly Channel<int> _numbers = Channel.CreateUnbounded<int>();

        public ChannelReader<int> Reader => _numbers.Reader;

        public void Add(int number) => _numbers.Writer.TryWrite(number);
    }

    private sealed class RecordingHandler(Handled handled) : IMessageHandler<TestEvent>
    {
        public ValueTask HandleAsync(Delivery<TestEvent> delivery, CancellationToken cancellationToken)
        {
            handled.Add(delivery.Payload.Number);
            return ValueTask.CompletedTask;
        }
    }
}
