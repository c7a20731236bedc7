using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.DependencyInjection.Tests.Support;
using MessageQueue.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace MessageQueue.DependencyInjection.Tests.Handlers;

public sealed class HostedHandlerTests
{
    private readonly Recorder _recorder = new();
    private readonly LogSink _logs = new();

    [Fact]
    public async Task EachMessage_GetsItsOwnScope_DisposedAfterTheHandlerReturns()
    {
        using IHost host = Build(services => services.AddMessageHandler<OrderHandler, Order>("orders", "#"));
        await host.StartAsync();
        IPublisher publisher = host.Services.GetRequiredService<IPublisher>();

        for (int i = 1; i <= 20; i++)
        {
            await publisher.PublishAsync("orders", "created", new Order(i, "tea"));
        }

        await _recorder.WaitForDisposedScopes(20).OrHang("20 scopes disposed");
        _recorder.Calls.Select(c => c.OrderId).Should().Equal(Enumerable.Range(1, 20), "MaxConcurrency 1 keeps the order");
        _recorder.Calls.Select(c => c.Scope).Distinct().Should().HaveCount(20, "every message gets its own scope");
        _recorder.DisposedScopes.Should().BeEquivalentTo(_recorder.Calls.Select(c => c.Scope));
        _recorder.DisposedScopesWithoutACall.Should().ContainSingle("the host built the handler once at start, in a scope of its own, to check the container can");
        await host.StopAsync();
    }

    [Fact]
    public async Task HandlerReturning_AcksTheMessage_OnTheDefaultDurableSubscription()
    {
        using IHost host = Build(services => services.AddMessageHandler<OrderHandler, Order>("orders", "#"));
        await host.StartAsync();
        Broker broker = host.Services.GetRequiredService<Broker>();

        for (int i = 1; i <= 5; i++)
        {
            await broker.PublishAsync("orders", "created", new Order(i, "tea"));
        }

        await _recorder.WaitForDisposedScopes(5).OrHang("5 handled");
        await host.StopAsync();

        SubscriptionSnapshot subscription = broker.GetSnapshot().Queues.Single(q => q.Name == "orders").Subscriptions.Single();
        subscription.Name.Should().Be(typeof(OrderHandler).FullName, "the handler type's name is the default subscription name");
        subscription.IsDurable.Should().BeTrue();
        subscription.Acked.Should().Be(5);
        subscription.InFlight.Should().Be(0);
        subscription.Backlog.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "6")]
    public async Task HandlerThrowing_IsRetriedOnTheBackoffSchedule_ThenDeadLettered()
    {
        var clock = new ManualTimeProvider();
        using IHost host = Build(services =>
        {
            services.AddSingleton<TimeProvider>(clock);
            services.AddMessageHandler<FailingHandler, Order>("orders", "#", "billing", h =>
            {
                h.Subscription.MaxDeliveries = 3;
                h.Subscription.RedeliveryDelays = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)];
            });
        });
        await host.StartAsync();
        Broker broker = host.Services.GetRequiredService<Broker>();
        await using Subscription<Order> deadLetters = await broker.SubscribeAsync<Order>(Broker.GetDeadLetterQueueName("orders"), "#");

        await broker.PublishAsync("orders", "created", new Order(1, "tea"));

        // Each failure is logged after its nack, so the redelivery delay is already running on the broker's clock
        // before the test moves that clock. Advancing earlier would start the delay late.
        await _logs.WaitForEvent(2, 1).OrHang("attempt 1 failed and was nacked");

        // Nothing comes back before the first delay has passed on the broker's clock. The redelivery happens in the
        // clock's timer callback, so the snapshot shows it (or not) as soon as Advance returns.
        SubscriptionSnapshot Billing() => broker.GetSnapshot().Queues.Single(q => q.Name == "orders").Subscription("billing");
        clock.Advance(TimeSpan.FromMilliseconds(999));
        Billing().Redelivered.Should().Be(0, "the first delay is 1 s");
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Billing().Redelivered.Should().Be(1, "1 s has passed");
        await _logs.WaitForEvent(2, 2).OrHang("attempt 2, after 1 s, failed and was nacked");
        clock.Advance(TimeSpan.FromMilliseconds(4999));
        Billing().Redelivered.Should().Be(1, "the second delay is 5 s");
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Billing().Redelivered.Should().Be(2, "5 s has passed");
        await _recorder.WaitForCalls(3).OrHang("attempt 3, after 5 s");

        Delivery<Order> dead = await deadLetters.ReadAsync().OrHang("the dead letter");
        dead.Payload.Should().Be(new Order(1, "tea"));

        // The runner logs the last failure after its nack has dead-lettered the message.
        await _logs.WaitForEvent(3).OrHang("the last failure logged");
        _recorder.Calls.Select(c => c.Attempt).Should().Equal(1, 2, 3);

        SubscriptionSnapshot billing = broker.GetSnapshot().Queues.Single(q => q.Name == "orders").Subscription("billing");
        billing.HandlerFailures.Should().Be(3);
        billing.Nacked.Should().Be(3);
        billing.DeadLettered.Should().Be(1);
        billing.Acked.Should().Be(0);
        billing.InFlight.Should().Be(0);
        _logs.WithEvent(2).Should().HaveCount(2, "attempts 1 and 2 log a failure that will be retried");
        _logs.WithEvent(3).Should().ContainSingle("the last attempt logs the dead letter").Which.Exception.Should().BeOfType<InvalidOperationException>();
        _logs.Entries.Should().NotContain(e => e.Message.Contains("tea", StringComparison.Ordinal), "payloads are never logged");
        await host.StopAsync();
    }

    [Fact]
    public async Task HandlerTheContainerCannotCreate_FailsTheStart_AndNoHandlerSubscribes()
    {
        using IHost host = Build(services =>
        {
            services.AddMessageHandler<OrderHandler, Order>("orders", "#", "fulfilment");
            services.AddMessageHandler<NeedsAMissingServiceHandler, Order>("orders", "#", "audit");
        });

        Func<Task> start = () => host.StartAsync();

        InvalidOperationException error = (await start.Should().ThrowAsync<InvalidOperationException>()).Which;
        error.Message.Should().StartWith("The container cannot create 1 hosted message handler(s), so the host did not start and no message was taken.")
            .And.Contain("handler NeedsAMissingServiceHandler on queue 'orders' (subscription 'audit')")
            .And.Contain(nameof(MissingService));
        host.Services.GetRequiredService<Broker>().GetSnapshot().Queues.Single(q => q.Name == "orders").Subscriptions
            .Should().BeEmpty("no handler subscribed, so nothing is taken and then dead-lettered");
    }

    [Fact]
    public async Task HandlerTimeout_CancelsTheHandlersToken_AndTheMessageIsNacked()
    {
        var clock = new ManualTimeProvider();
        using var gate = new TestGate("the timed handler, on attempts 1 and 2");
        using IHost host = Build(services =>
        {
            services.AddSingleton<TimeProvider>(clock);
            services.AddSingleton(gate);
            services.AddMessageHandler<GatedHandler, Order>("orders", "#", configure: h =>
            {
                h.HandlerTimeout = TimeSpan.FromSeconds(10);
                h.Subscription.RedeliveryDelays = [TimeSpan.Zero];
            });
        });
        await host.StartAsync();
        Broker broker = host.Services.GetRequiredService<Broker>();

        try
        {
            await broker.PublishAsync("orders", "created", new Order(1, "tea"));
            await gate.WaitForInside(1).OrHang("attempt 1 inside the handler");
            clock.Advance(TimeSpan.FromSeconds(10));

            // The timeout cancelled attempt 1; with a zero backoff, attempt 2 arrives at once.
            await _recorder.WaitForCalls(2).OrHang("attempt 2 after the timeout");
            _recorder.Calls.Select(c => c.Attempt).Should().Equal(1, 2);
            _logs.WithEvent(4).Should().ContainSingle().Which.Message.Should().Contain("00:00:10");
        }
        finally
        {
            // Attempt 2 waits at the gate. Disposing a host does not stop it, and the broker's disposal waits for the
            // running handler up to its shutdown timeout on the manual clock, which nobody moves: the gate opens here,
            // before the host is disposed, whatever happened above.
            gate.Open();
        }

        await host.StopAsync();
        broker.GetSnapshot().Queues.Single(q => q.Name == "orders").Subscriptions.Single().Acked.Should().Be(1);
    }

    [Fact]
    public async Task MaxConcurrency_RunsThatManyAtOnce_AndNoMore()
    {
        using var gate = new TestGate("the handlers, three at a time");
        using IHost host = Build(services =>
        {
            services.AddSingleton(gate);
            services.AddMessageHandler<GatedHandler, Order>("orders", "#", configure: h => h.MaxConcurrency = 3);
        });
        await host.StartAsync();
        Broker broker = host.Services.GetRequiredService<Broker>();

        try
        {
            for (int i = 1; i <= 10; i++)
            {
                await broker.PublishAsync("orders", "created", new Order(i, "tea"));
            }

            await gate.WaitForInside(3).OrHang("three handlers inside at once");
            _recorder.Calls.Should().HaveCount(3, "the fourth waits for a free slot");
        }
        finally
        {
            // Before the host is disposed: disposing it does not stop it, and the broker's disposal waits for running handlers.
            gate.Open();
        }

        await _recorder.WaitForCalls(10).OrHang("all ten");
        await host.StopAsync();

        gate.MaxInside.Should().Be(3);
        _recorder.Calls.Select(c => c.OrderId).Order().Should().Equal(Enumerable.Range(1, 10), "each order handled exactly once");
        _recorder.Calls.Should().OnlyContain(c => c.Attempt == 1, "nothing was redelivered");
        SubscriptionSnapshot subscription = broker.GetSnapshot().Queues.Single(q => q.Name == "orders").Subscriptions.Single();
        subscription.Acked.Should().Be(10);
        subscription.Redelivered.Should().Be(0);
    }

    [Fact]
    public async Task HandlerThatSettlesItself_TheHostsAckDoesNothing()
    {
        using IHost host = Build(services => services.AddMessageHandler<RejectingHandler, Order>("orders", "#"));
        await host.StartAsync();
        Broker broker = host.Services.GetRequiredService<Broker>();
        await using Subscription<Order> deadLetters = await broker.SubscribeAsync<Order>(Broker.GetDeadLetterQueueName("orders"), "#");

        await broker.PublishAsync("orders", "created", new Order(1, "tea"));

        Delivery<Order> dead = await deadLetters.ReadAsync().OrHang("the rejected message");
        dead.Message.Headers[MessageHeaders.DeadLetterReason].Should().Be(DeadLetterReasons.Rejected);
        await host.StopAsync();
        SubscriptionSnapshot subscription = broker.GetSnapshot().Queues.Single(q => q.Name == "orders").Subscriptions.Single();
        subscription.Acked.Should().Be(0);
        subscription.DeadLettered.Should().Be(1);
    }

    [Fact]
    public async Task Stop_LetsARunningHandlerFinish_ThenAcks()
    {
        using var gate = new TestGate("the handler, on order 1");
        using IHost host = Build(services =>
        {
            services.AddSingleton(gate);
            services.AddMessageHandler<GatedHandler, Order>("orders", "#");
        });
        await host.StartAsync();
        Broker broker = host.Services.GetRequiredService<Broker>();
        Task stopping;
        try
        {
            await broker.PublishAsync("orders", "created", new Order(1, "tea"));
            await broker.PublishAsync("orders", "created", new Order(2, "tea"));
            await gate.WaitForInside(1).OrHang("order 1 inside the handler");

            stopping = host.StopAsync();
            stopping.IsCompleted.Should().BeFalse("the running handler has not finished");
        }
        finally
        {
            // Whatever happened above: a stop, or the disposal of a host that was not stopped, waits for the handler.
            gate.Open();
        }

        await stopping.OrHang("the host's stop");

        _recorder.Calls.Select(c => c.OrderId).Should().Equal([1], "no new delivery is taken once stopping");
        SubscriptionSnapshot subscription = broker.GetSnapshot().Queues.Single(q => q.Name == "orders").Subscriptions.Single();
        subscription.Acked.Should().Be(1);
        subscription.Backlog.Should().Be(1, "order 2 went back to the durable subscription");
        subscription.Consumers.Should().Be(0);
        _logs.WithEvent(5).Should().ContainSingle().Which.Message.Should().Contain("1 messages handled; 1 prefetched and 0 unfinished");
    }

    [Fact]
    [Trait("Guarantee", "4")]
    public async Task HandlerPublishingIntoItsOwnFullQueue_GetsAnErrorInsteadOfWaiting()
    {
        // The same guard as the handler form's: the hosted handler holds its delivery, and with it the room it would
        // wait for, so the publish is refused at once rather than left waiting forever.
        var outcome = new PublishOutcome();
        using IHost host = Build(services =>
        {
            services.AddSingleton(outcome);
            services.AddMessageBroker(b => b.DeclareQueue<Order>("loop", q =>
            {
                q.MaxMessages = 1;
                q.PublishTimeout = Timeout.InfiniteTimeSpan;
            }));
            services.AddMessageHandler<SelfPublishingHandler, Order>("loop", "#");
        });
        await host.StartAsync();
        IPublisher publisher = host.Services.GetRequiredService<IPublisher>();

        await publisher.PublishAsync("loop", "first", new Order(1, "tea"));

        Exception? error = await outcome.Result.Task.OrHang("the hosted handler's publish to fail instead of waiting forever");
        error.Should().BeOfType<QueueFullException>().Which.Message.Should().Contain("handler of one of its own subscriptions");
        await host.StopAsync().OrHang("the stop");
    }

    /// <summary>What <see cref="SelfPublishingHandler"/>'s publish ended with.</summary>
    public sealed class PublishOutcome
    {
        public TaskCompletionSource<Exception?> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Publishes into the queue it handles.</summary>
    public sealed class SelfPublishingHandler(IPublisher publisher, PublishOutcome outcome) : IMessageHandler<Order>
    {
        public async ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
        {
            try
            {
                await publisher.PublishAsync("loop", "second", new Order(2, "tea"), cancellationToken: cancellationToken);
                outcome.Result.TrySetResult(null);
            }
            catch (QueueFullException error)
            {
                outcome.Result.TrySetResult(error);
            }
        }
    }

    private IHost Build(Action<IServiceCollection> configure) => TestHosts.BuildWithOrders(_recorder, _logs, configure);
}
