using System.Diagnostics;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.RabbitMQ.Tests;

/// <summary>
/// What the README says about traces on RabbitMQ: the transport starts no spans, RabbitMQ.Client's publisher source
/// carries the W3C context in the AMQP headers, and a handler's process span joins the publisher's trace through them.
/// Its ActivityListener is process-wide, so it runs alone.
/// </summary>
[Collection(nameof(ServerRestarts))]
public sealed class TracingTests
{
    [RabbitMqFact]
    public async Task WithRabbitMqClientsPublisherSource_TheHandlersProcessSpan_JoinsThePublishersTrace()
    {
        await RabbitMqServer.SettledAsync();
        string queue = "traced-" + Guid.NewGuid().ToString("N");
        using var spans = new SpanRecorder(null, "MessageQueue", "RabbitMQ.Client.Publisher");
        bool IsProcess(Activity a) => a.Source.Name == "MessageQueue" && a.Kind == ActivityKind.Consumer && Equals(a.GetTagItem("messaging.destination.name"), queue);

        await using RabbitMqTransport transport = await RabbitMqTransport.ConnectAsync(RabbitMqServer.Options("tracing-test"));
        await transport.DeclareQueueAsync(queue);
        var seen = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Subscription handler = await transport.SubscribeAsync<TestEvent>(queue, ["#"], (delivery, _) =>
        {
            seen.TrySetResult(delivery.Message.Headers.GetValueOrDefault("traceparent"));
            return ValueTask.CompletedTask;
        });

        ActivityTraceId trace;
        using (Activity checkout = new Activity("checkout").Start())
        {
            trace = checkout.TraceId;
            await transport.PublishAsync(queue, "created", new TestEvent(1));
        }

        string? traceParent = await seen.Task.OrHang("the handler's call");
        await spans.WaitFor(1, IsProcess);
        Activity process = spans.Stopped.Single(IsProcess);

        traceParent.Should().NotBeNull("RabbitMQ.Client's publisher source wrote the trace context into the AMQP headers");
        process.TraceId.Should().Be(trace, "the handler's span joins the publisher's trace");
        spans.Stopped.Should().NotContain(s => s.Source.Name == "MessageQueue" && s.Kind == ActivityKind.Producer, "the transport starts no publish span of its own");
        spans.Stopped.Should().Contain(s => s.Source.Name == "RabbitMQ.Client.Publisher" && s.SpanId == process.ParentSpanId, "the process span's parent is RabbitMQ.Client's publish span");
    }
}
