using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace MessageQueue;

/// <summary>
/// The broker's instruments, on one <see cref="Meter"/> named <see cref="BrokerMetrics.MeterName"/>: the OpenTelemetry
/// messaging conventions where they have a name, and <c>messagequeue.*</c> for the broker's own. Every recording site
/// checks its instrument's <see cref="Instrument.Enabled"/> first, so with no listener the hot path pays a field read
/// and a branch, and allocates nothing.
/// </summary>
/// <remarks>
/// Tags: <c>messaging.system</c> (<c>messagequeue</c> for the broker; the transport's name on the handler metrics of
/// hosted handlers that run on a transport), <c>messaging.destination.name</c> (the queue),
/// <c>messaging.destination.subscription.name</c> (a durable subscription's name; absent for ephemeral ones), and
/// <c>messagequeue.event</c> (the event name), and on the OpenTelemetry instruments <c>messaging.operation.name</c> and
/// <c>messaging.operation.type</c> (required and conditionally required by the conventions). Queues and durable
/// subscriptions are named in code, so their number is bounded by the application; event names are not, so each queue
/// tags at most <see cref="BrokerOptions.MaxMetricEventNames"/> distinct ones and reports the rest as <c>_other</c>.
/// Message ids are never tags. The two duration instruments of the conventions use the bucket boundaries the
/// conventions advise; the ack latency, the broker's own, has finer ones, since an in-process ack takes microseconds.
/// </remarks>
internal sealed class BrokerMetrics : IDisposable
{
    /// <summary>The meter's name: the library's (<see cref="BrokerDiagnostics.MeterName"/>).</summary>
    public const string MeterName = BrokerDiagnostics.MeterName;

    /// <summary>The event tag of events past <see cref="BrokerOptions.MaxMetricEventNames"/> in one queue.</summary>
    public const string OtherEvents = "_other";

    /// <summary>The broker's messaging.system.</summary>
    public const string BrokerSystem = "messagequeue";

    /// <summary>The boundaries the OpenTelemetry messaging conventions advise for messaging.client.operation.duration and messaging.process.duration.</summary>
    internal static readonly double[] ConventionDurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    /// <summary>The ack latency's boundaries: from 10 µs, where an in-process ack lands, to 10 s.</summary>
    private static readonly double[] LatencyBuckets = [0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly int _maxEventTags;

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly TimeProvider _time;
    private readonly Broker? _broker;
    private readonly string _system;
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, string>> _eventTags = new(StringComparer.Ordinal);

    /// <param name="broker">The broker whose queues the gauges observe; null for the handler metrics of hosted handlers on a transport, which have no gauges.</param>
    /// <param name="factory">Creates the meter; null for a meter of its own, scoped to <paramref name="broker"/>.</param>
    /// <param name="time">The clock durations are measured on.</param>
    /// <param name="maxEventTags">Distinct event tags per queue (see <see cref="BrokerOptions.MaxMetricEventNames"/>).</param>
    /// <param name="system">The messaging.system tag.</param>
    public BrokerMetrics(Broker? broker, IMeterFactory? factory, TimeProvider time, int maxEventTags, string system = BrokerSystem)
    {
        _system = system;
        _time = time;
        _maxEventTags = maxEventTags;
        _broker = broker;
        var options = new MeterOptions(MeterName) { Version = typeof(Broker).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion };
        if (factory is not null)
        {
            _meter = factory.Create(options);
        }
        else
        {
            // Scoped to its broker, so that a listener can tell brokers (and tests) apart.
            options.Scope = broker;
            _meter = new Meter(options);
            _ownsMeter = true;
        }

        Sent = _meter.CreateCounter<long>("messaging.client.sent.messages", "{message}", "Messages published: they entered their queue.");
        Consumed = _meter.CreateCounter<long>("messaging.client.consumed.messages", "{message}", "Deliveries read by consumers, redeliveries included.");
        OperationDuration = _meter.CreateHistogram("messaging.client.operation.duration", "s", "Duration of a publish, until the queue (and, when durable, the store) has the message.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ConventionDurationBuckets });
        ProcessDuration = _meter.CreateHistogram("messaging.process.duration", "s", "Duration of a handler's processing of one delivery (handler-form subscriptions and hosted handlers).", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ConventionDurationBuckets });
        Acked = _meter.CreateCounter<long>("messagequeue.messages.acked", "{message}", "Deliveries acked (auto-acks included).");
        Nacked = _meter.CreateCounter<long>("messagequeue.messages.nacked", "{message}", "Deliveries nacked (handler failures included).");
        Redelivered = _meter.CreateCounter<long>("messagequeue.messages.redelivered", "{message}", "Deliveries read on their second attempt or later.");
        DeadLettered = _meter.CreateCounter<long>("messagequeue.messages.dead_lettered", "{message}", "Messages moved to a dead-letter queue, by messagequeue.dead_letter.reason.");
        Expired = _meter.CreateCounter<long>("messagequeue.messages.expired", "{message}", "Messages that outlived their time to live (dead-lettered or dropped).");
        Dropped = _meter.CreateCounter<long>("messagequeue.messages.dropped", "{message}", "Messages dropped by a declared policy, by messagequeue.drop.reason.");
        Unrouted = _meter.CreateCounter<long>("messagequeue.messages.unrouted", "{message}", "Messages published where no subscription matched their event, so the queue did not keep them.");
        AuthorizationDenials = _meter.CreateCounter<long>("messagequeue.authorization.denials", "{call}", "Publish and subscribe calls denied by authorization.");
        AckLatency = _meter.CreateHistogram("messagequeue.message.ack_latency", "s", "Time from a message's publish to its ack.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        if (broker is null)
        {
            return;
        }

        _meter.CreateObservableGauge("messagequeue.queue.depth", () => Observe(broker, GaugeKind.Depth), "{message}", "Messages in a queue not yet settled by every subscription (or retained, under limits retention).");
        _meter.CreateObservableGauge("messagequeue.subscription.backlog", () => Observe(broker, GaugeKind.Backlog), "{message}", "Messages waiting in a subscription for a consumer.");
        _meter.CreateObservableGauge("messagequeue.subscription.in_flight", () => Observe(broker, GaugeKind.InFlight), "{message}", "Deliveries handed to a subscription's consumers and not yet settled.");
    }

    private enum GaugeKind
    {
        Depth,
        Backlog,
        InFlight,
    }

    public Meter Meter => _meter;

    /// <summary>A timestamp of the broker's clock, to measure a duration from.</summary>
    public long Now() => _time.GetTimestamp();

    public Counter<long> Sent { get; }

    public Counter<long> Consumed { get; }

    public Histogram<double> OperationDuration { get; }

    public Histogram<double> ProcessDuration { get; }

    public Counter<long> Acked { get; }

    public Counter<long> Nacked { get; }

    public Counter<long> Redelivered { get; }

    public Counter<long> DeadLettered { get; }

    public Counter<long> Expired { get; }

    public Counter<long> Dropped { get; }

    public Counter<long> Unrouted { get; }

    public Counter<long> AuthorizationDenials { get; }

    public Histogram<double> AckLatency { get; }

    /// <summary>Whether an ack is recorded anywhere: the acked counter or the ack latency.</summary>
    public bool IsAckRecorded => Acked.Enabled || AckLatency.Enabled;

    /// <summary>A message entered <paramref name="queue"/>.</summary>
    public void RecordSent(string queue, string eventName)
    {
        if (Sent.Enabled)
        {
            TagList tags = Tags(queue, null, eventName);
            tags.Add("messaging.operation.name", "publish");
            tags.Add("messaging.operation.type", "send");
            Sent.Add(1, tags);
        }
    }

    /// <summary>A consumer read a delivery.</summary>
    public void RecordConsumed(string queue, string? subscription, string eventName, int attempt)
    {
        if (Consumed.Enabled)
        {
            TagList tags = Tags(queue, subscription, eventName);
            tags.Add("messaging.operation.name", "receive");
            tags.Add("messaging.operation.type", "receive");
            Consumed.Add(1, tags);
        }

        if (attempt > 1 && Redelivered.Enabled)
        {
            Redelivered.Add(1, Tags(queue, subscription, eventName));
        }
    }

    /// <summary>A delivery was acked; <paramref name="publishedTicks"/> is the message's publish time (UTC ticks).</summary>
    public void RecordAcked(string queue, string? subscription, string eventName, long publishedTicks)
    {
        if (Acked.Enabled)
        {
            Acked.Add(1, Tags(queue, subscription, eventName));
        }

        if (AckLatency.Enabled)
        {
            AckLatency.Record(Math.Max(0, (_time.GetUtcNow().UtcTicks - publishedTicks) / (double)TimeSpan.TicksPerSecond), Tags(queue, subscription, eventName));
        }
    }

    public void RecordNacked(string queue, string? subscription, string eventName)
    {
        if (Nacked.Enabled)
        {
            Nacked.Add(1, Tags(queue, subscription, eventName));
        }
    }

    public void RecordDeadLettered(string queue, string? subscription, string eventName, string reason)
    {
        if (DeadLettered.Enabled)
        {
            TagList tags = Tags(queue, subscription, eventName);
            tags.Add("messagequeue.dead_letter.reason", reason);
            DeadLettered.Add(1, tags);
        }

        if (reason == DeadLetterReasons.Expired && Expired.Enabled)
        {
            Expired.Add(1, Tags(queue, subscription, eventName));
        }
    }

    /// <summary>A message published to <paramref name="queue"/> matched no subscription and was not kept.</summary>
    public void RecordUnrouted(string queue, string eventName)
    {
        if (Unrouted.Enabled)
        {
            Unrouted.Add(1, Tags(queue, null, eventName));
        }
    }

    public void RecordDropped(MessageDroppedEventArgs dropped)
    {
        string? subscription = string.IsNullOrEmpty(dropped.Subscription) ? null : dropped.Subscription;
        if (Dropped.Enabled)
        {
            TagList tags = Tags(dropped.Queue, subscription, dropped.Event);
            tags.Add("messagequeue.drop.reason", ReasonTag(dropped.Reason));
            Dropped.Add(1, tags);
        }

        if (dropped.Reason == DropReason.Expired && Expired.Enabled)
        {
            Expired.Add(1, Tags(dropped.Queue, subscription, dropped.Event));
        }
    }

    /// <summary>A handler processed one delivery, from <paramref name="startedAt"/> (a timestamp of the broker's clock).</summary>
    public void RecordProcessed(string queue, string? subscription, string eventName, long startedAt, Exception? error)
    {
        TagList tags = Tags(queue, subscription, eventName);
        tags.Add("messaging.operation.name", "process");
        tags.Add("messaging.operation.type", "process");
        if (error is not null)
        {
            tags.Add("error.type", error.GetType().FullName);
        }

        ProcessDuration.Record(_time.GetElapsedTime(startedAt).TotalSeconds, tags);
    }

    /// <summary>A publish took from <paramref name="startedAt"/> until now.</summary>
    public void RecordPublishDuration(string queue, string eventName, long startedAt, string? errorType)
    {
        // A failed publish may name a queue or an event that does not exist (or is not even valid): tagging those would
        // let bad input grow the tag set without bound.
        TagList tags = errorType is null || _broker?.HasQueue(queue) == true
            ? Tags(queue, null, errorType is null ? eventName : OtherEvents)
            : Tags(OtherEvents, null, OtherEvents);
        tags.Add("messaging.operation.name", "publish");
        tags.Add("messaging.operation.type", "send");
        if (errorType is not null)
        {
            tags.Add("error.type", errorType);
        }

        OperationDuration.Record(_time.GetElapsedTime(startedAt).TotalSeconds, tags);
    }

    /// <summary>A publish or subscribe was denied.</summary>
    public void RecordDenied(string operation, string queue)
    {
        if (AuthorizationDenials.Enabled)
        {
            // Not the client: client names come from callers, and their number is not bounded.
            var tags = new TagList
            {
                { "messaging.system", _system },
                { "messaging.destination.name", _broker is not null && _broker.HasQueue(queue) ? queue : OtherEvents },
                { "messaging.operation.name", operation },
            };
            AuthorizationDenials.Add(1, tags);
        }
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private static string ReasonTag(DropReason reason) => reason switch
    {
        DropReason.QueueOverflow => "queue_overflow",
        DropReason.DeadLetterDiscarded => "dead_letter_discarded",
        DropReason.Expired => "expired",
        DropReason.RetentionLimit => "retention_limit",
        DropReason.SubscriptionOverflow => "subscription_overflow",
        _ => "other",
    };

    private TagList Tags(string queue, string? subscription, string eventName)
    {
        var tags = new TagList
        {
            { "messaging.system", _system },
            { "messaging.destination.name", queue },
            { "messagequeue.event", EventTag(queue, eventName) },
        };
        if (subscription is not null)
        {
            tags.Add("messaging.destination.subscription.name", subscription);
        }

        return tags;
    }

    /// <summary>The event's tag: itself, for the first <see cref="BrokerOptions.MaxMetricEventNames"/> distinct events of a queue; <c>_other</c> after.</summary>
    private string EventTag(string queue, string eventName)
    {
        ConcurrentDictionary<string, string> known = _eventTags.GetOrAdd(queue, static _ => new ConcurrentDictionary<string, string>(StringComparer.Ordinal));
        if (known.TryGetValue(eventName, out string? tag))
        {
            return tag;
        }

        // A race may let a few more than the bound in; the bound is about cardinality, not an exact count.
        return known.Count < _maxEventTags ? known.GetOrAdd(eventName, eventName) : OtherEvents;
    }

    private static List<Measurement<int>> Observe(Broker broker, GaugeKind kind)
    {
        var measurements = new List<Measurement<int>>();
        if (broker.IsDisposed)
        {
            return measurements;
        }

        foreach (QueueSnapshot queue in broker.GetSnapshot().Queues)
        {
            if (kind == GaugeKind.Depth)
            {
                measurements.Add(new Measurement<int>(queue.Depth, new KeyValuePair<string, object?>("messaging.system", BrokerSystem), new KeyValuePair<string, object?>("messaging.destination.name", queue.Name)));
                continue;
            }

            foreach (SubscriptionSnapshot subscription in queue.Subscriptions)
            {
                int value = kind == GaugeKind.Backlog ? subscription.Backlog : subscription.InFlight;
                measurements.Add(subscription.Name is null
                    ? new Measurement<int>(value, new KeyValuePair<string, object?>("messaging.system", BrokerSystem), new KeyValuePair<string, object?>("messaging.destination.name", queue.Name))
                    : new Measurement<int>(value, new KeyValuePair<string, object?>("messaging.system", BrokerSystem), new KeyValuePair<string, object?>("messaging.destination.name", queue.Name), new KeyValuePair<string, object?>("messaging.destination.subscription.name", subscription.Name)));
            }
        }

        return measurements;
    }
}
