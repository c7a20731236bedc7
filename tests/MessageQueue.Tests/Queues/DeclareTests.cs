using FluentAssertions;
using MessageQueue.ContractTests;
using Xunit;

namespace MessageQueue.Tests.Queues;

/// <summary>Declaring queues, declaring them on first use, and the payload type a queue is fixed to.</summary>
public sealed class DeclareTests : IAsyncLifetime
{
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        _broker = new Broker();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public void DeclareQueue_SameTypeAndOptionsTwice_IsANoOp()
    {
        _broker.DeclareQueue<TestEvent>("orders", new QueueOptions { MaxMessages = 5 });
        _broker.DeclareQueue<TestEvent>("orders", new QueueOptions { MaxMessages = 5 });

        _broker.GetSnapshot().Queues.Select(q => q.Name).Should().Equal("orders", "orders.$dlq");
    }

    [Fact]
    public void DeclareQueue_OtherOptionsOrType_ThrowsNamingBothDeclarations()
    {
        _broker.DeclareQueue<TestEvent>("orders", new QueueOptions { MaxMessages = 5 });

        FluentActions.Invoking(() => _broker.DeclareQueue<TestEvent>("orders", new QueueOptions { MaxMessages = 6 }))
            .Should().Throw<InvalidOperationException>().WithMessage("*MaxMessages=5*MaxMessages=6*");
        FluentActions.Invoking(() => _broker.DeclareQueue<string>("orders", new QueueOptions { MaxMessages = 5 }))
            .Should().Throw<InvalidOperationException>().WithMessage("*TestEvent*String*");
    }

    [Fact]
    public void DeclareQueue_OptionsChangedAfterwards_TheQueueKeepsTheValuesItWasDeclaredWith()
    {
        var options = new QueueOptions { MaxMessages = 5, Overflow = OverflowPolicy.Reject };
        _broker.DeclareQueue<TestEvent>("orders", options);

        options.MaxMessages = 1000;
        options.Overflow = OverflowPolicy.DropOldest;

        QueueSnapshot queue = _broker.GetSnapshot().Queue("orders");
        queue.MaxMessages.Should().Be(5);
        queue.Overflow.Should().Be(OverflowPolicy.Reject);
    }

    [Fact]
    public async Task PublishAsync_UndeclaredQueue_DeclaresItWithDocumentedDefaultsAndTheFirstType()
    {
        await _broker.PublishAsync("auto", "e", new TestEvent(1));

        QueueSnapshot queue = _broker.GetSnapshot().Queue("auto");
        queue.PayloadType.Should().Be<TestEvent>();
        queue.MaxMessages.Should().Be(10_000);
        queue.Overflow.Should().Be(OverflowPolicy.Wait);
        new QueueOptions().PublishTimeout.Should().Be(TimeSpan.FromSeconds(30));
        _broker.GetSnapshot().Queue("auto.$dlq").PayloadType.Should().Be<TestEvent>();
    }

    [Fact]
    public async Task SubscribeAsync_DeadLetterQueueOfUndeclaredQueue_DeclaresTheSourceQueue()
    {
        await using Subscription<TestEvent> dlq = await _broker.SubscribeAsync<TestEvent>("later.$dlq", "#");

        _broker.GetSnapshot().Queue("later").PayloadType.Should().Be<TestEvent>();
    }

    [Fact]
    public async Task PublishAsync_PayloadOfAnotherType_ThrowsAndPublishesNothing()
    {
        _broker.DeclareQueue<TestEvent>("orders");

        ArgumentException error = (await FluentActions.Awaiting(async () => await _broker.PublishAsync("orders", "e", "a string"))
            .Should().ThrowAsync<ArgumentException>()).Which;
        error.ParamName.Should().Be("payload");
        error.Message.Should().Contain("carries payloads of type MessageQueue.ContractTests.TestEvent").And.Contain("System.String");
        _broker.GetSnapshot().Queue("orders").Published.Should().Be(0);
    }

    [Fact]
    public async Task PublishAsync_QueueOfObject_AcceptsAnyPayloadAndSubscribersReadObjects()
    {
        _broker.DeclareQueue<object>("anything");
        await using Subscription<object> subscription = await _broker.SubscribeAsync<object>("anything", "#");

        await _broker.PublishAsync("anything", "text", "hello");
        await _broker.PublishAsync("anything", "number", 42);
        _broker.TryPublish("anything", "record", new TestEvent(1), out _).Should().BeTrue();

        (await subscription.ReadAsync()).Payload.Should().Be("hello");
        (await subscription.ReadAsync()).Payload.Should().Be(42);
        (await subscription.ReadAsync()).Payload.Should().Be(new TestEvent(1));
    }

    [Fact]
    public async Task SubscribeAsync_TypeOtherThanTheQueues_ThrowsNamingTheRightOne()
    {
        _broker.DeclareQueue<object>("anything");

        ArgumentException error = (await FluentActions.Awaiting(async () => await _broker.SubscribeAsync<string>("anything", "#"))
            .Should().ThrowAsync<ArgumentException>()).Which;
        error.Message.Should().Contain("SubscribeAsync<Object>");
    }

    [Fact]
    public async Task AutoDeclareOff_UnknownQueue_ThrowsQueueNotFoundSayingHowToDeclareIt()
    {
        await using var strict = new Broker(new BrokerOptions { AutoDeclareQueues = false });

        QueueNotFoundException publish = (await FluentActions.Awaiting(async () => await strict.PublishAsync("nowhere", "e", new TestEvent(1)))
            .Should().ThrowAsync<QueueNotFoundException>()).Which;
        publish.Queue.Should().Be("nowhere");
        publish.Message.Should().Contain("DeclareQueue<T>(\"nowhere\")").And.Contain("AutoDeclareQueues");
        await FluentActions.Awaiting(async () => await strict.SubscribeAsync<TestEvent>("nowhere", "#")).Should().ThrowAsync<QueueNotFoundException>();
        await FluentActions.Awaiting(async () => await strict.SubscribeAsync<TestEvent>("nowhere.$dlq", "#")).Should().ThrowAsync<QueueNotFoundException>();
        await FluentActions.Awaiting(async () => await strict.DeleteSubscriptionAsync("nowhere", "s")).Should().ThrowAsync<QueueNotFoundException>();

        strict.DeclareQueue<TestEvent>("nowhere");
        (await strict.PublishAsync("nowhere", "e", new TestEvent(1))).Sequence.Should().Be(1);
    }

    [Fact]
    public async Task PublishAsync_IntoADeadLetterQueue_ThrowsPointingToTheSourceQueue()
    {
        _broker.DeclareQueue<TestEvent>("orders");

        await FluentActions.Awaiting(async () => await _broker.PublishAsync("orders.$dlq", "e", new TestEvent(1)))
            .Should().ThrowAsync<InvalidOperationException>().WithMessage("*dead-letter queue*Publish to the source queue*");
    }

    [Fact]
    public void GetDeadLetterQueueName_ValidQueue_AppendsTheReservedSuffix()
    {
        Broker.GetDeadLetterQueueName("orders").Should().Be("orders.$dlq");
        FluentActions.Invoking(() => Broker.GetDeadLetterQueueName("orders.$dlq")).Should().Throw<ArgumentException>();
    }
}
