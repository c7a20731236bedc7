using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// The names the broker reports metrics and traces under, for wiring OpenTelemetry without typing them, and the process
/// span of a delivery you read yourself.
/// </summary>
/// <example>
/// <code>
/// builder.Services.AddOpenTelemetry()
///     .WithMetrics(metrics =&gt; metrics.AddMeter(BrokerDiagnostics.MeterName))
///     .WithTracing(tracing =&gt; tracing.AddSource(BrokerDiagnostics.ActivitySourceName));
/// </code>
/// </example>
public static class BrokerDiagnostics
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> every broker reports its instruments on.</summary>
    public const string MeterName = "MessageQueue";

    /// <summary>The name of the <see cref="ActivitySource"/> the broker starts its publish and process spans on.</summary>
    public const string ActivitySourceName = "MessageQueue";

    /// <summary>
    /// Starts the consumer span of processing one delivery that you read yourself (<see cref="Subscription{T}.ReadAsync"/>,
    /// <see cref="Subscription{T}.TryRead"/>): <c>process &lt;queue&gt;</c>, a child of the publisher's span when the
    /// message carries its trace context, with the same tags as the span of a handler's call. Dispose it when the
    /// processing is done; mark it failed with <see cref="Activity.SetStatus"/> when it failed.
    /// </summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="delivery">The delivery you are about to process.</param>
    /// <returns>The span, or <see langword="null"/> when nobody listens to <see cref="ActivitySourceName"/> (or the sampler declines it).</returns>
    /// <example>
    /// <code>
    /// Delivery&lt;Order&gt; delivery = await subscription.ReadAsync(cancellationToken);
    /// using (Activity? span = BrokerDiagnostics.StartProcessActivity(delivery))
    /// {
    ///     await HandleAsync(delivery.Payload);
    /// }
    ///
    /// await delivery.AckAsync();
    /// </code>
    /// </example>
    /// <exception cref="ArgumentException"><paramref name="delivery"/> is a default value that holds no message.</exception>
    public static Activity? StartProcessActivity<T>(in Delivery<T> delivery)
    {
        if (delivery.Message is null)
        {
            throw new ArgumentException("The delivery is a default value and holds no message; pass a delivery read from a subscription.", nameof(delivery));
        }

        return BrokerTelemetry.StartProcess(delivery, delivery.SubscriptionName);
    }
}
