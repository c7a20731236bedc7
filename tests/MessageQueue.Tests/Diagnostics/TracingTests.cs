using System.Diagnostics;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Persistence;
using Xunit;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>Publish and process spans, and the W3C trace context that carries one into the other.</summary>
[Collection(GlobalListeners.Name)]
public sealed class TracingTests : IAsyncLifetime
{
    private readonly string _queue = $"traced-{Guid.NewGuid():N}";
    private readonly SpanRecorder _spans;
    private readonly Broker _broker = new();

    public TracingTests() => _spans = new SpanRecorder(_queue);

    public Task InitializeAsync() => Task.CompletedTask;

    // IAsyncLifetime, which xUnit 2 calls after each test: a listener left attached would trace every later publish in
    // the process, the allocation gate's included.
    public async Task DisposeAsync()
    {
        _spans.Dispose();
        await _broker.DisposeAsync();
    }

    [Fact]
    public async Task ConsumerSpan_IsAChildOfThePublishSpan_WithTheMessagingAttributes()
    {
        var processed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription handler = await _broker.SubscribeAsync<TestEvent>(_queue, ["#"], (_, _) =>
        {
            processed.TrySetResult();
            return ValueTask.CompletedTask;
        }, new SubscriptionOptions { Name = "worker" });

        PublishReceipt receipt = await _broker.PublishAsync(_queue, "created", new TestEvent(1));
        await processed.Task.OrHang("the handler's call");
        await _broker.FlushAsync();
        await _spans.WaitFor(2);

        Activity publish = _spans.Stopped.Single(a => a.Kind == ActivityKind.Producer);
        Activity process = _spans.Stopped.Single(a => a.Kind == ActivityKind.Consumer);
        publish.DisplayName.Should().Be($"publish {_queue}");
        publish.GetTagItem("messaging.system").Should().Be("messagequeue");
        publish.GetTagItem("messaging.operation.type").Should().Be("send");
        publish.GetTagItem("messaging.message.id").Should().Be(receipt.MessageId.ToString());
        process.DisplayName.Should().Be($"process {_queue}");
        process.GetTagItem("messaging.operation.type").Should().Be("process");
        process.GetTagItem("messaging.message.id").Should().Be(receipt.MessageId.ToString());
        process.GetTagItem("messaging.destination.subscription.name").Should().Be("worker");
        process.TraceId.Should().Be(publish.TraceId, "the consumer's span joins the publisher's trace");
        process.ParentSpanId.Should().Be(publish.SpanId);
    }

    [Fact]
    public async Task ThePublishedMessage_CarriesTheTraceContext_InItsHeaders()
    {
        await using Subscription<TestEvent> reader = await _broker.SubscribeAsync<TestEvent>(_queue, "#");
        using var parent = new Activity("checkout").Start();
        await _broker.PublishAsync(_queue, "created", new TestEvent(1), new PublishOptions { Headers = new Dictionary<string, string> { ["tenant"] = "acme" } });
        parent.Stop();

        Delivery<TestEvent> delivery = await reader.ReadAsync();
        delivery.Message.Headers.Should().Contain("tenant", "acme");
        string traceParent = delivery.Message.Headers["traceparent"];
        ActivityContext.TryParse(traceParent, null, out ActivityContext context).Should().BeTrue();
        context.TraceId.Should().Be(parent.TraceId, "the publish span is a child of the caller's activity");
        _spans.Stopped.Should().ContainSingle(a => a.Kind == ActivityKind.Producer).Which.ParentSpanId.Should().Be(parent.SpanId);
    }

    [Fact]
    public async Task AHandlerThatThrows_MarksItsSpanFailed()
    {
        await using Subscription handler = await _broker.SubscribeAsync<TestEvent>(_queue, ["#"], static (_, _) => throw new InvalidOperationException("no"), new SubscriptionOptions { MaxDeliveries = 1 });
        await _broker.PublishAsync(_queue, "created", new TestEvent(1));
        await _spans.WaitFor(2);

        Activity process = _spans.Stopped.Single(a => a.Kind == ActivityKind.Consumer);
        process.Status.Should().Be(ActivityStatusCode.Error);
        process.GetTagItem("error.type").Should().Be(typeof(InvalidOperationException).FullName);
    }

    [Fact]
    public async Task TryPublish_IsTracedLikeAPublish_AndAFullQueueMarksItsSpanFailed()
    {
        _broker.DeclareQueue<TestEvent>(_queue, new QueueOptions { MaxMessages = 1, Overflow = OverflowPolicy.Reject });
        await using Subscription<TestEvent> reader = await _broker.SubscribeAsync<TestEvent>(_queue, "#", new SubscriptionOptions { Name = "slow" });

        _broker.TryPublish(_queue, "created", new TestEvent(1), out PublishReceipt receipt).Should().BeTrue();
        _broker.TryPublish(_queue, "created", new TestEvent(2), out _).Should().BeFalse("the queue holds one message");

        Delivery<TestEvent> delivery = await reader.ReadAsync();
        Activity[] spans = [.. _spans.Stopped.Where(a => a.Kind == ActivityKind.Producer)];
        spans.Should().HaveCount(2);
        spans[0].GetTagItem("messaging.message.id").Should().Be(receipt.MessageId.ToString());
        spans[0].Status.Should().Be(ActivityStatusCode.Unset);
        ActivityContext.TryParse(delivery.Message.Headers["traceparent"], null, out ActivityContext context).Should().BeTrue();
        context.SpanId.Should().Be(spans[0].SpanId, "the message carries the TryPublish span's context");
        spans[1].Status.Should().Be(ActivityStatusCode.Error);
        spans[1].GetTagItem("error.type").Should().Be(typeof(QueueFullException).FullName);
    }

    [Fact]
    public async Task TryPublish_OnADurableQueue_MarksItsSpanFailed_WithADurableQueueErrorType_NotAFullQueue()
    {
        // A durable queue's publish completes only after its commit, so TryPublish refuses it whatever the room. The span
        // says so, rather than blaming a full queue.
        await using var broker = new Broker(new BrokerOptions { Store = new InMemoryMessageStore(), Durability = Durability.Committed });
        broker.DeclareQueue<TestEvent>(_queue);

        broker.TryPublish(_queue, "created", new TestEvent(1), out _).Should().BeFalse("only PublishAsync completes a durable publish");

        Activity span = _spans.Stopped.Should().ContainSingle(a => a.Kind == ActivityKind.Producer).Subject;
        span.Status.Should().Be(ActivityStatusCode.Error);
        span.GetTagItem("error.type").Should().Be("durable_queue");
        span.StatusDescription.Should().Contain("PublishAsync");
        broker.GetSnapshot().Queue(_queue).Published.Should().Be(0);
    }

    [Fact]
    public async Task AMessageWithoutTraceContext_StartsItsOwnTrace_NotTheOneCurrentWhenTheHandlerSubscribed()
    {
        // Published while nobody listens, so the message carries no trace context; kept by a durable subscription.
        _spans.Dispose();
        Subscription<TestEvent> keeper = await _broker.SubscribeAsync<TestEvent>(_queue, "#", new SubscriptionOptions { Name = "worker" });
        await keeper.DisposeAsync();
        await _broker.PublishAsync(_queue, "created", new TestEvent(1));

        using var spans = new SpanRecorder(_queue);
        var processed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Subscription handler;
        using (Activity startup = new Activity("startup").Start())
        {
            // The handler subscribes while a span is current, as in a request or the host's start-up.
            handler = await _broker.SubscribeAsync<TestEvent>(_queue, ["#"], (_, _) =>
            {
                processed.TrySetResult();
                return ValueTask.CompletedTask;
            }, new SubscriptionOptions { Name = "worker" });
            await processed.Task.OrHang("the handler's call");
            await handler.DisposeAsync();

            await spans.WaitFor(1, a => a.Kind == ActivityKind.Consumer);
            Activity process = spans.Stopped.Should().ContainSingle(a => a.Kind == ActivityKind.Consumer).Subject;
            process.ParentSpanId.Should().Be(default(ActivitySpanId), "a message without trace context starts a trace of its own");
            process.TraceId.Should().NotBe(startup.TraceId, "the span current when the handler subscribed is not its parent");
        }
    }

    [Fact]
    public async Task TurningTracingOn_NeverMakesAPublishFail_EvenWithNoRoomForHeaders()
    {
        await using var strict = new Broker(new BrokerOptions { MaxHeadersLength = 0 });
        await using Subscription<TestEvent> reader = await strict.SubscribeAsync<TestEvent>(_queue, "#");

        // A caller's trace state beyond the W3C's 512 characters is not carried; the traceparent is.
        using (Activity caller = new Activity("request").Start())
        {
            caller.TraceStateString = "vendor=" + new string('v', 600);
            await strict.PublishAsync(_queue, "created", new TestEvent(1));
        }

        // A hierarchical-id caller: its span's id is no W3C traceparent, so nothing is injected.
        using (Activity legacy = new Activity("legacy").SetIdFormat(ActivityIdFormat.Hierarchical).Start())
        {
            await strict.PublishAsync(_queue, "created", new TestEvent(2));
        }

        Delivery<TestEvent> first = await reader.ReadAsync();
        first.Message.Headers.Should().ContainKey("traceparent").WhoseValue.Should().HaveLength(55);
        first.Message.Headers.Should().NotContainKey("tracestate");
        Delivery<TestEvent> second = await reader.ReadAsync();
        second.Message.Headers.Should().BeEmpty();
    }
}
