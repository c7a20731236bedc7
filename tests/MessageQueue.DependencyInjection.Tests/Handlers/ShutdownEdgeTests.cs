using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.DependencyInjection.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace MessageQueue.DependencyInjection.Tests.Handlers;

/// <summary>The hosted handlers' edges: failed starts, cut-short stops on a last attempt, handlers that settle and throw, subscriptions that end under the host.</summary>
public sealed class ShutdownEdgeTests
{
    private readonly Recorder _recorder = new();
    private readonly LogSink _logs = new();

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task CutShortAtStop_OnTheLastAttempt_GoesBackWithoutUsingAnAttempt_NotToTheDeadLetterQueue()
    {
        using var gate = new TestGate("the stubborn handler, on order 1");
        using IHost host = Build(services =>
        {
            services.AddSingleton(gate);
            services.AddMessageHandler<StubbornHandler, Order>("orders", "#", "fulfilment", h => h.Subscription.MaxDeliveries = 1);
        });
        await host.StartAsync();
        Broker broker = host.Services.GetRequiredService<Broker>();
        try
        {
            await broker.PublishAsync("orders", "placed", new Order(1, "tea"));
            await gate.WaitForInside(1).OrHang("order 1 inside the handler, on its only attempt");

            // The host's shutdown time is already up: the running call is cut short, and it ignores its token.
            await host.StopAsync(new CancellationToken(canceled: true)).OrHang("the stop");

            SubscriptionSnapshot fulfilment = broker.GetSnapshot().Queue("orders").Subscription("fulfilment");
            fulfilment.Backlog.Should().Be(1, "the message went back to the durable subscription");
            fulfilment.DeadLettered.Should().Be(0, "a slow shutdown is not the message's failure");
            fulfilment.HandlerFailures.Should().Be(0);
            broker.GetSnapshot().Queue(Broker.GetDeadLetterQueueName("orders")).Depth.Should().Be(0);
            _logs.WithEvent(6).Should().ContainSingle().Which.Message.Should().Contain("1 calls of handler StubbornHandler");
            _logs.WithEvent(5).Should().ContainSingle().Which.Message.Should().Contain("0 messages handled; 0 prefetched and 1 unfinished");
        }
        finally
        {
            // The handler ignores its token, so only the gate lets it finish, whatever happened above.
            gate.Open();
        }

        // The late finish of the abandoned call settles nothing; the message is delivered again on attempt 1. Its scope
        // ends after the host's late ack, so once it is disposed that ack has been tried, before the subscription is back.
        await _recorder.WaitForDisposedScopes(1).OrHang("the abandoned call's late ack, and the end of its scope");
        await using Subscription<Order> again = await broker.SubscribeAsync<Order>("orders", ["#"], new SubscriptionOptions { Name = "fulfilment", MaxDeliveries = 1 });
        Delivery<Order> redelivered = await again.ReadAsync().AsTask().OrHang("the redelivery");
        redelivered.Payload.Id.Should().Be(1);
        redelivered.Attempt.Should().Be(1, "the cut-short delivery did not use up an attempt");
        (await redelivered.AckAsync()).Should().BeTrue();
    }

    [Fact]
    public async Task FailedStart_StopsTheHandlersThatDidStart()
    {
        using IHost host = Build(services =>
        {
            services.AddMessageHandler<OrderHandler, Order>("orders", "#", "fulfilment");
            services.AddMessageHandler<AuditHandler, Order>("orders", "#", "audit", h => h.Subscription.Exclusive = ExclusiveMode.Reject);
        });

        // Someone else holds the audit subscription exclusively, so the second handler cannot start.
        Broker broker = host.Services.GetRequiredService<Broker>();
        await using Subscription<Order> holder = await broker.SubscribeAsync<Order>("orders", ["#"], new SubscriptionOptions { Name = "audit", Exclusive = ExclusiveMode.Reject });

        Func<Task> start = () => host.StartAsync();
        await start.Should().ThrowAsync<SubscriptionInUseException>();

        SubscriptionSnapshot fulfilment = broker.GetSnapshot().Queue("orders").Subscription("fulfilment");
        fulfilment.Consumers.Should().Be(0, "the handler that started was stopped with the failed start");
        _logs.WithEvent(11).Should().ContainSingle().Which.Message.Should().Contain("the 1 handlers already started were stopped");

        await broker.PublishAsync("orders", "placed", new Order(1, "tea"));
        _recorder.Calls.Should().BeEmpty("no handler runs in a host that failed to start");
        broker.GetSnapshot().Queue("orders").Subscription("fulfilment").Backlog.Should().Be(1, "the durable subscription keeps the message for the next start");
    }

    [Fact]
    public async Task HandlerThatRejectsThenThrows_IsNotCountedAsAFailure()
    {
        using IHost host = Build(services => services.AddMessageHandler<RejectThenThrowHandler, Order>("orders", "#", "fulfilment"));
        await host.StartAsync();
        Broker broker = host.Services.GetRequiredService<Broker>();

        await broker.PublishAsync("orders", "placed", new Order(1, "tea"));
        LogEntry entry = await _logs.WaitForEvent(10).OrHang("the log of the throw after settling");
        await host.StopAsync();

        entry.Level.Should().Be(LogLevel.Warning);
        entry.Exception.Should().BeOfType<InvalidOperationException>();
        SubscriptionSnapshot fulfilment = broker.GetSnapshot().Queue("orders").Subscription("fulfilment");
        fulfilment.DeadLettered.Should().Be(1);
        fulfilment.Nacked.Should().Be(0);
        fulfilment.HandlerFailures.Should().Be(0, "the handler settled the message before it threw");
        _logs.WithEvent(2).Should().BeEmpty("no 'will be delivered again' for a message that was rejected");
        _recorder.Calls.Should().ContainSingle();
    }

    [Fact]
    public async Task SubscriptionTakenOver_WhileTheHostRuns_IsLoggedWithTheReason()
    {
        using IHost host = Build(services => services.AddMessageHandler<OrderHandler, Order>("orders", "#", "fulfilment"));
        await host.StartAsync();
        Broker broker = host.Services.GetRequiredService<Broker>();

        await using Subscription<Order> usurper = await broker.SubscribeAsync<Order>("orders", ["#"], new SubscriptionOptions { Name = "fulfilment", Exclusive = ExclusiveMode.TakeOver });
        LogEntry ended = await _logs.WaitForEvent(7).OrHang("the log that the handler's subscription ended");

        ended.Level.Should().Be(LogLevel.Error);
        ended.Exception.Should().BeOfType<SubscriptionClosedException>().Which.Reason.Should().Be(SubscriptionCloseReason.TakenOver);
        _logs.WithEvent(7).Should().ContainSingle("one log line for the subscription, not one per read loop");

        await broker.PublishAsync("orders", "placed", new Order(1, "tea"));
        Delivery<Order> taken = await usurper.ReadAsync().AsTask().OrHang("the message, delivered to the new holder");
        taken.Payload.Id.Should().Be(1);
        await taken.AckAsync();
        await host.StopAsync().OrHang("a clean stop after the subscription ended");
        _recorder.Calls.Should().BeEmpty();
    }

    private IHost Build(Action<IServiceCollection> configure) => TestHosts.BuildWithOrders(_recorder, _logs, configure);
}
