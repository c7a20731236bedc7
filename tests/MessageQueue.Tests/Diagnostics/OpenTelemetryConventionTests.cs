using System.Diagnostics;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Xunit;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>
/// The broker's instruments and spans as the real OpenTelemetry SDK exports them, checked against the messaging
/// conventions: the required operation name, the advised bucket boundaries, the event-tag cap, and the process span a
/// pull-form reader starts itself.
/// </summary>
/// <remarks>
/// A MeterProvider and a TracerProvider listen to every broker in the process, so these tests run alone among the
/// listeners' tests, and read only the points and spans of their own queue.
/// </remarks>
[Collection(GlobalListeners.Name)]
public sealed class OpenTelemetryConventionTests
{
    private static readonly double[] AdvisedDurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    private readonly string _queue = $"otel-{Guid.NewGuid():N}";

    [Fact]
    public async Task SentAndConsumedCounters_CarryTheRequiredOperationName()
    {
        var exported = new List<MetricSnapshot>();
        using MeterProvider meters = Sdk.CreateMeterProviderBuilder().AddMeter(BrokerDiagnostics.MeterName).AddInMemoryExporter(exported).Build();
        await using var broker = new Broker();
        await using Subscription<TestEvent> subscription = await broker.SubscribeAsync<TestEvent>(_queue, ["#"]);
        await broker.PublishAsync(_queue, "created", new TestEvent(1));
        Delivery<TestEvent> delivery = await subscription.ReadAsync().AsTask().OrHang("the delivery");
        (await delivery.AckAsync()).Should().BeTrue();

        meters.ForceFlush().Should().BeTrue();

        Point sent = PointsOf(exported, "messaging.client.sent.messages").Should().ContainSingle().Subject;
        sent.Tags.Should().Contain("messaging.operation.name", "publish").And.Contain("messaging.operation.type", "send")
            .And.Contain("messaging.system", "messagequeue").And.Contain("messagequeue.event", "created");
        sent.Sum.Should().Be(1);

        Point consumed = PointsOf(exported, "messaging.client.consumed.messages").Should().ContainSingle().Subject;
        consumed.Tags.Should().Contain("messaging.operation.name", "receive").And.Contain("messaging.operation.type", "receive");
        consumed.Sum.Should().Be(1);
    }

    [Fact]
    public async Task DurationHistograms_UseTheBucketBoundariesTheConventionsAdvise()
    {
        var exported = new List<MetricSnapshot>();
        using MeterProvider meters = Sdk.CreateMeterProviderBuilder().AddMeter(BrokerDiagnostics.MeterName).AddInMemoryExporter(exported).Build();
        await using var broker = new Broker();
        var handled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (Subscription handler = await broker.SubscribeAsync<TestEvent>(_queue, "#", (_, _) =>
        {
            handled.TrySetResult();
            return ValueTask.CompletedTask;
        }))
        {
            await broker.PublishAsync(_queue, "created", new TestEvent(1));
            await handled.Task.OrHang("the handler's call");
        }

        meters.ForceFlush().Should().BeTrue();

        foreach (string histogram in new[] { "messaging.client.operation.duration", "messaging.process.duration" })
        {
            Point point = PointsOf(exported, histogram).Should().ContainSingle($"one {histogram} point for the queue").Subject;
            point.Bounds.Should().Equal(AdvisedDurationBuckets, $"{histogram} uses the boundaries the conventions advise");
            point.Count.Should().Be(1);
            point.Tags.Should().ContainKey("messaging.operation.name");
        }
    }

    [Fact]
    public async Task EventTags_PastMaxMetricEventNames_AreReportedAsOther()
    {
        var exported = new List<MetricSnapshot>();
        using MeterProvider meters = Sdk.CreateMeterProviderBuilder().AddMeter(BrokerDiagnostics.MeterName).AddInMemoryExporter(exported).Build();
        await using var broker = new Broker(new BrokerOptions { MaxMetricEventNames = 2 });
        foreach (string name in new[] { "a", "b", "c", "d", "a" })
        {
            await broker.PublishAsync(_queue, name, new TestEvent(1));
        }

        meters.ForceFlush().Should().BeTrue();

        Dictionary<string, long> byEvent = PointsOf(exported, "messaging.client.sent.messages")
            .ToDictionary(p => (string)p.Tags["messagequeue.event"]!, p => p.Sum);
        byEvent.Should().Equal(new Dictionary<string, long> { ["a"] = 2, ["b"] = 1, ["_other"] = 2 });
    }

    [Fact]
    public void MaxMetricEventNames_OutOfRange_IsRefusedWithTheOtherProblems()
    {
        Action create = () => _ = new Broker(new BrokerOptions { MaxMetricEventNames = -1, MaxQueues = 0 });

        create.Should().Throw<ArgumentException>()
            .WithMessage("*MaxMetricEventNames is -1; it must be between 0 and 10000*")
            .WithMessage("*MaxQueues*");
    }

    [Fact]
    public async Task StartProcessActivity_OfAPulledDelivery_IsAChildOfThePublishSpan()
    {
        var spans = new List<Activity>();
        using TracerProvider tracing = Sdk.CreateTracerProviderBuilder().AddSource(BrokerDiagnostics.ActivitySourceName).AddInMemoryExporter(spans).Build();
        await using var broker = new Broker();
        await using Subscription<TestEvent> subscription = await broker.SubscribeAsync<TestEvent>(_queue, ["#"], new SubscriptionOptions { Name = "reader" });
        await broker.PublishAsync(_queue, "created", new TestEvent(1));
        Delivery<TestEvent> delivery = await subscription.ReadAsync().AsTask().OrHang("the delivery");

        using (Activity? span = BrokerDiagnostics.StartProcessActivity(delivery))
        {
            span.Should().NotBeNull("a TracerProvider listens to the broker's source");
        }

        (await delivery.AckAsync()).Should().BeTrue();
        tracing.ForceFlush().Should().BeTrue();

        Activity[] ours = [.. spans.Where(s => Equals(s.GetTagItem("messaging.destination.name"), _queue))];
        Activity publish = ours.Should().ContainSingle(s => s.Kind == ActivityKind.Producer).Subject;
        Activity process = ours.Should().ContainSingle(s => s.Kind == ActivityKind.Consumer).Subject;
        process.DisplayName.Should().Be($"process {_queue}");
        process.TraceId.Should().Be(publish.TraceId);
        process.ParentSpanId.Should().Be(publish.SpanId);
        process.GetTagItem("messaging.operation.name").Should().Be("process");
        process.GetTagItem("messaging.destination.subscription.name").Should().Be("reader");
        process.GetTagItem("messaging.message.id").Should().Be(delivery.Message.Id.ToString());
    }

    [Fact]
    public void StartProcessActivity_OfADefaultDelivery_SaysItHoldsNoMessage()
    {
        Action start = () => BrokerDiagnostics.StartProcessActivity(default(Delivery<TestEvent>));

        start.Should().Throw<ArgumentException>().WithParameterName("delivery").WithMessage("*default value*holds no message*");
    }

    /// <summary>One exported point of this test's queue: its tags, its sum (counters) or count and boundaries (histograms).</summary>
    private sealed record Point(IReadOnlyDictionary<string, object?> Tags, long Sum, long Count, double[] Bounds);

    private List<Point> PointsOf(List<MetricSnapshot> exported, string instrument)
    {
        var points = new List<Point>();
        foreach (MetricSnapshot metric in exported.Where(m => m.Name == instrument))
        {
            foreach (MetricPoint point in metric.MetricPoints)
            {
                var tags = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (KeyValuePair<string, object?> tag in point.Tags)
                {
                    tags[tag.Key] = tag.Value;
                }

                if (!Equals(tags.GetValueOrDefault("messaging.destination.name"), _queue))
                {
                    continue;
                }

                bool histogram = metric.MetricType == MetricType.Histogram;
                var bounds = new List<double>();
                if (histogram)
                {
                    foreach (HistogramBucket bucket in point.GetHistogramBuckets())
                    {
                        if (!double.IsPositiveInfinity(bucket.ExplicitBound))
                        {
                            bounds.Add(bucket.ExplicitBound);
                        }
                    }
                }

                points.Add(new Point(tags, histogram ? 0 : point.GetSumLong(), histogram ? point.GetHistogramCount() : 0, [.. bounds]));
            }
        }

        // The exporter keeps one snapshot per flush; each test flushes once.
        return points;
    }
}
