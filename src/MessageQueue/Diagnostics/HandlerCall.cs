using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// The telemetry of one handler call, for every place the broker runs a handler (handler-form subscriptions, and the
/// hosted handlers of MessageQueue.DependencyInjection): its process span and its messaging.process.duration. With no
/// listener it holds nothing and records nothing.
/// </summary>
internal readonly struct HandlerCall : IDisposable
{
    private readonly BrokerMetrics? _metrics;
    private readonly Activity? _activity;
    private readonly long _started;
    private readonly bool _timed;
    private readonly string _queue;
    private readonly string? _subscription;
    private readonly string _event;

    private HandlerCall(BrokerMetrics? metrics, Activity? activity, bool timed, long started, string queue, string? subscription, string eventName)
    {
        _metrics = metrics;
        _activity = activity;
        _timed = timed;
        _started = started;
        _queue = queue;
        _subscription = subscription;
        _event = eventName;
    }

    /// <summary>Starts the span (a child of the publisher's) and the clock, as far as anyone listens.</summary>
    public static HandlerCall Start<T>(BrokerMetrics? metrics, in Delivery<T> delivery, string? subscription)
    {
        // A flag, not a zero timestamp, says whether the call is timed: a clock's timestamp may well be 0.
        bool timed = metrics is { ProcessDuration.Enabled: true };
        long started = timed ? metrics!.Now() : 0;
        Activity? activity = BrokerTelemetry.StartProcess(delivery, subscription);
        return new HandlerCall(metrics, activity, timed, started, delivery.Message.Queue, subscription, delivery.Event);
    }

    /// <summary>The handler returned.</summary>
    public void Succeeded() => Record(null);

    /// <summary>The handler threw: the span is marked failed, and the duration carries error.type.</summary>
    public void Failed(Exception error)
    {
        BrokerTelemetry.Fail(_activity, error);
        Record(error);
    }

    /// <summary>Ends the span.</summary>
    public void Dispose() => _activity?.Dispose();

    private void Record(Exception? error)
    {
        if (_timed)
        {
            _metrics!.RecordProcessed(_queue, _subscription, _event, _started, error);
        }
    }
}
