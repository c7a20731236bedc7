using System.Diagnostics;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Sqlite.Tests;

/// <summary>
/// The trace context travels in the stored headers: a message handled after a restart joins the publisher's trace.
/// Its ActivityListener is process-wide, so it runs alone (its collection is not parallel): no other test's messages get
/// a trace context meanwhile.
/// </summary>
[Collection(Name)]
public sealed class TracingAcrossRestartTests : IDisposable
{
    public const string Name = "Process-wide listeners";

    private readonly TempStoreFile _file = new();
    private readonly string _queue = $"traced-{Guid.NewGuid():N}";
    private readonly SpanRecorder _spans;

    public TracingAcrossRestartTests() => _spans = new SpanRecorder(_queue);

    public void Dispose()
    {
        _spans.Dispose();
        _file.Dispose();
    }

    [Fact]
    public async Task AMessageHandledAfterARestart_JoinsThePublishersTrace()
    {
        await using (var first = new Broker(new BrokerOptions { Store = new SqliteMessageStore(_file.Path) }))
        {
            Subscription<TestEvent> worker = await first.SubscribeAsync<TestEvent>(_queue, "#", new SubscriptionOptions { Name = "worker" });
            await worker.DisposeAsync();
            await first.PublishAsync(_queue, "created", new TestEvent(1));
        }

        Activity publish = _spans.Stopped.Should().ContainSingle(a => a.Kind == ActivityKind.Producer).Subject;

        var handled = new TaskCompletionSource<ActivityContext>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var second = new Broker(new BrokerOptions { Store = new SqliteMessageStore(_file.Path) }))
        {
            await using Subscription handler = await second.SubscribeAsync<TestEvent>(_queue, ["#"], (_, _) =>
            {
                // The handler runs inside its process span.
                handled.TrySetResult(Activity.Current!.Context);
                return ValueTask.CompletedTask;
            }, new SubscriptionOptions { Name = "worker" });

            ActivityContext process = await handled.Task.OrHang("the message handled after the restart");
            process.TraceId.Should().Be(publish.TraceId, "the trace context came back from the store with the message");
            Activity.Current.Should().BeNull();
        }

        Activity consumer = _spans.Stopped.Should().ContainSingle(a => a.Kind == ActivityKind.Consumer).Subject;
        consumer.ParentSpanId.Should().Be(publish.SpanId);
    }
}

/// <summary>Tests with a process-wide listener run alone, after the parallel ones.</summary>
[CollectionDefinition(TracingAcrossRestartTests.Name, DisableParallelization = true)]
public sealed class ProcessWideListeners
{
}
