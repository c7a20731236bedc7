using System.Collections.Concurrent;
using System.Diagnostics;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>Publish and process spans, and the W3C trace context that carries one into the other.</summary>
[Collection(GlobalListeners.Name)]
public sealed class TracingTests : IAsyncDisposable
{
    private readonly string _queue = $"traced-{Guid.NewGuid():N}";
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly ActivityListener _listener;
    private readonly Broker _broker = new();
    private (int Count, TaskCompletionSource Signal)? _waiter;

    public TracingTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "MessageQueue",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (Equals(activity.GetTagItem("messaging.destination.name"), _queue))
                {
                    lock (_stopped)
                    {
                        _stopped.Enqueue(activity);
                        if (_waiter is { } waiter && _stopped.Count >= waiter.Count)
                        {
                            waiter.Signal.TrySetResult();
                        }
                    }
                }
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
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
        await WaitForSpans(2);

        Activity publish = _stopped.Single(a => a.Kind == ActivityKind.Producer);
        Activity process = _stopped.Single(a => a.Kind == ActivityKind.Consumer);
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
        _stopped.Should().ContainSingle(a => a.Kind == ActivityKind.Producer).Which.ParentSpanId.Should().Be(parent.SpanId);
    }

    [Fact]
    public async Task AHandlerThatThrows_MarksItsSpanFailed()
    {
        await using Subscription handler = await _broker.SubscribeAsync<TestEvent>(_queue, ["#"], static (_, _) => throw new InvalidOperationException("no"), new SubscriptionOptions { MaxDeliveries = 1 });
        await _broker.PublishAsync(_queue, "created", new TestEvent(1));
        await WaitForSpans(2);

        Activity process = _stopped.Single(a => a.Kind == ActivityKind.Consumer);
        process.Status.Should().Be(ActivityStatusCode.Error);
        process.GetTagItem("error.type").Should().Be(typeof(InvalidOperationException).FullName);
    }

    /// <summary>Spans stop on the handler's thread after its call returns: wait for them by count, signalled per stop.</summary>
    private Task WaitForSpans(int count)
    {
        lock (_stopped)
        {
            if (_stopped.Count >= count)
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiter = (count, signal);
            return signal.Task.OrHang($"{count} spans");
        }
    }
}
