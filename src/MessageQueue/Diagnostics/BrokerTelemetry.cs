using System.Collections.Frozen;
using System.Diagnostics;
using System.Reflection;

namespace MessageQueue;

/// <summary>
/// The broker's traces, on the <see cref="ActivitySource"/> named <see cref="SourceName"/>: a producer span per publish
/// and a consumer span per handler call, following the OpenTelemetry messaging conventions. The publish injects the W3C
/// trace context into the message's headers (<c>traceparent</c>, <c>tracestate</c>), which a store keeps, so the
/// consumer's span joins the publisher's trace, across processes and restarts too. With no listener nothing is started,
/// injected or allocated.
/// </summary>
internal static class BrokerTelemetry
{
    /// <summary>The activity source's name: the library's (<see cref="BrokerDiagnostics.ActivitySourceName"/>).</summary>
    public const string SourceName = BrokerDiagnostics.ActivitySourceName;

    /// <summary>The W3C trace-context header a publish carries.</summary>
    public const string TraceParentHeader = "traceparent";

    /// <summary>The W3C trace-state header a publish carries, when the trace has state.</summary>
    public const string TraceStateHeader = "tracestate";

    /// <summary>The length of a W3C <c>traceparent</c> (version 00): <c>00-{32 hex}-{16 hex}-{2 hex}</c>.</summary>
    public const int TraceParentLength = 55;

    /// <summary>The longest <c>tracestate</c> the W3C recommendation asks systems to carry.</summary>
    public const int MaxTraceStateLength = 512;

    /// <summary>
    /// Whether a header is trace context within the W3C bounds, which <see cref="BrokerOptions.MaxHeadersLength"/> does not
    /// count (turning tracing on must not make a publish that fits fail). Anything longer under those names counts.
    /// </summary>
    public static bool IsBoundedTraceContext(string? name, string? value) => value is not null && name switch
    {
        TraceParentHeader => value.Length == TraceParentLength,
        TraceStateHeader => value.Length <= MaxTraceStateLength,
        _ => false,
    };

    private const string System = "messagequeue";

    public static readonly ActivitySource Source = new(SourceName, typeof(Broker).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion);

    /// <summary>Starts a publish span, or returns null when nobody listens (or the sampler declines).</summary>
    public static Activity? StartPublish(string queue, string eventName)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        Activity? activity = Source.StartActivity($"publish {queue}", ActivityKind.Producer);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", System);
            activity.SetTag("messaging.destination.name", queue);
            activity.SetTag("messaging.operation.type", "send");
            activity.SetTag("messaging.operation.name", "publish");
            activity.SetTag("messagequeue.event", eventName);
        }

        return activity;
    }

    /// <summary>
    /// The publish's headers with the span's trace context added: W3C context only, within the W3C bounds, so it never
    /// counts toward MaxHeadersLength. A span with a hierarchical id injects nothing; a trace state longer than the
    /// W3C's 512 characters is left out, as the recommendation allows.
    /// </summary>
    public static IReadOnlyDictionary<string, string>? Inject(Activity activity, IReadOnlyDictionary<string, string>? headers)
    {
        if (activity.IdFormat != ActivityIdFormat.W3C)
        {
            return headers;
        }

        var injected = headers is null ? new Dictionary<string, string>(2, StringComparer.Ordinal) : new Dictionary<string, string>(headers, StringComparer.Ordinal);
        injected[TraceParentHeader] = activity.Id!;
        if (activity.TraceStateString is { Length: > 0 and <= MaxTraceStateLength } state)
        {
            injected[TraceStateHeader] = state;
        }
        else
        {
            // None, or too long to carry: and the caller's own trace state belongs to another trace than this span's.
            injected.Remove(TraceStateHeader);
        }

        return injected.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Starts a consumer span for a handler's call, a child of the publisher's span when the message carries its context.</summary>
    public static Activity? StartProcess<T>(in Delivery<T> delivery, string? subscription)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        Message<T> message = delivery.Message;
        ActivityContext parent = default;
        if (message.Headers.TryGetValue(TraceParentHeader, out string? traceParent))
        {
            message.Headers.TryGetValue(TraceStateHeader, out string? traceState);
            ActivityContext.TryParse(traceParent, traceState, isRemote: true, out parent);
        }

        Activity? activity = Source.StartActivity($"process {message.Queue}", ActivityKind.Consumer, parent);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", System);
            activity.SetTag("messaging.destination.name", message.Queue);
            activity.SetTag("messaging.operation.type", "process");
            activity.SetTag("messaging.operation.name", "process");
            activity.SetTag("messaging.message.id", message.Id.ToString());
            activity.SetTag("messagequeue.event", message.Event);
            activity.SetTag("messagequeue.delivery.attempt", delivery.Attempt);
            if (subscription is not null)
            {
                activity.SetTag("messaging.destination.subscription.name", subscription);
            }
        }

        return activity;
    }

    /// <summary>Marks a span failed.</summary>
    public static void Fail(Activity? activity, Exception error)
    {
        if (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, error.Message);
            activity.SetTag("error.type", error.GetType().FullName);
        }
    }
}
