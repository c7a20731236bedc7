using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// The telemetry of one publish while someone listens, for <c>PublishAsync</c> and <c>TryPublish</c> alike: its producer
/// span, whose W3C trace context goes into the message's headers, and its messaging.client.operation.duration.
/// </summary>
internal readonly struct PublishCall : IDisposable
{
    private readonly BrokerMetrics _metrics;
    private readonly Activity? _activity;
    private readonly bool _timed;
    private readonly long _started;
    private readonly string _queue;
    private readonly string _event;

    private PublishCall(BrokerMetrics metrics, Activity? activity, bool timed, long started, string queue, string eventName)
    {
        _metrics = metrics;
        _activity = activity;
        _timed = timed;
        _started = started;
        _queue = queue;
        _event = eventName;
    }

    /// <summary>Starts the span and the clock, as far as anyone listens, and adds the span's trace context to <paramref name="options"/>' headers.</summary>
    public static PublishCall Start(BrokerMetrics metrics, string queue, string eventName, ref PublishOptions options)
    {
        // A flag, not a zero timestamp, says whether the publish is timed: a clock's timestamp may well be 0.
        bool timed = metrics.OperationDuration.Enabled;
        long started = timed ? metrics.Now() : 0;
        Activity? activity = BrokerTelemetry.StartPublish(queue, eventName);
        if (activity is not null)
        {
            options = options with { Headers = BrokerTelemetry.Inject(activity, options.Headers) };
        }

        return new PublishCall(metrics, activity, timed, started, queue, eventName);
    }

    /// <summary>The message is in the queue.</summary>
    public void Succeeded(in PublishReceipt receipt)
    {
        _activity?.SetTag("messaging.message.id", receipt.MessageId.ToString());
        Record(null);
    }

    /// <summary>The publish threw: the span is marked failed, and the duration carries error.type.</summary>
    public void Failed(Exception error)
    {
        BrokerTelemetry.Fail(_activity, error);
        Record(error.GetType().FullName);
    }

    /// <summary>Nothing was published, without an exception (a TryPublish into a full queue).</summary>
    public void Refused(string errorType, string description)
    {
        _activity?.SetStatus(ActivityStatusCode.Error, description);
        _activity?.SetTag("error.type", errorType);
        Record(errorType);
    }

    /// <summary>Ends the span.</summary>
    public void Dispose() => _activity?.Dispose();

    private void Record(string? errorType)
    {
        if (_timed)
        {
            _metrics.RecordPublishDuration(_queue, _event, _started, errorType);
        }
    }
}
