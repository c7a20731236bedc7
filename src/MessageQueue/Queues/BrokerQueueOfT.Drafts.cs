using System.Collections.Frozen;
using System.Collections.Immutable;

namespace MessageQueue;

/// <summary>
/// A publish's options turned into a draft: the options checked (every problem names itself and what to do), the
/// headers frozen, the expiry and the time it is held until worked out, and its id.
/// </summary>
internal sealed partial class BrokerQueue<T>
{
    /// <summary>
    /// Checks a publish's options and turns them into a draft: frozen headers, the expiry, the time it is
    /// held until, and its id. The clock is read only when the options need it.
    /// </summary>
    private Draft<T> Prepare(string eventName, T payload, in PublishOptions options)
    {
        // The common publish has no options and the queue no default time to live: nothing to check.
        if (options.Headers is null && options.Timeout is null && options.TimeToLive is null && options.DeliverAfter is null
            && options.NotBefore is null && options.MessageId is null && _timeToLive == Timeout.InfiniteTimeSpan)
        {
            return new Draft<T>(eventName, payload, FrozenDictionary<string, string>.Empty, Guid.Empty);
        }

        IReadOnlyDictionary<string, string> headers = FreezeHeaders(options.Headers, _broker.Limits.MaxHeadersLength);
        if (options.Timeout is { } timeout && Timeouts.Describe(timeout, "PublishOptions.Timeout", allowZero: false) is { } timeoutError)
        {
            throw new ArgumentOutOfRangeException(nameof(options), timeout, timeoutError);
        }

        if (options.TimeToLive is { } ttl && Timeouts.Describe(ttl, "PublishOptions.TimeToLive", allowZero: false) is { } ttlError)
        {
            throw new ArgumentOutOfRangeException(nameof(options), ttl, ttlError);
        }

        if (options.DeliverAfter is { } after)
        {
            string? afterError = after == Timeout.InfiniteTimeSpan
                ? "PublishOptions.DeliverAfter is infinite; the message would never be delivered. Use a finite delay."
                : Timeouts.Describe(after, "PublishOptions.DeliverAfter", allowZero: true);
            if (afterError is not null)
            {
                throw new ArgumentOutOfRangeException(nameof(options), after, afterError);
            }
        }

        if (options.DeliverAfter is not null && options.NotBefore is not null)
        {
            throw new ArgumentException("PublishOptions.DeliverAfter and NotBefore are both set; give one or the other.", nameof(options));
        }

        if (options.MessageId == Guid.Empty)
        {
            throw new ArgumentException("PublishOptions.MessageId is Guid.Empty; give a real id, or null for one the broker assigns.", nameof(options));
        }

        TimeSpan? timeToLive = options.TimeToLive ?? (_timeToLive == Timeout.InfiniteTimeSpan ? null : _timeToLive);
        long expiresAt = 0, dueAt = 0;
        if (timeToLive is not null || options.DeliverAfter is not null || options.NotBefore is not null)
        {
            long now = _time.GetUtcNow().UtcTicks;
            expiresAt = timeToLive is { } live ? now + live.Ticks : 0;
            dueAt = options.DeliverAfter is { } delay && delay > TimeSpan.Zero ? now + delay.Ticks
                : options.NotBefore is { } notBefore && notBefore.UtcTicks > now ? notBefore.UtcTicks
                : 0;
        }

        // A held message has no sequence yet, so its id cannot come from one.
        Guid id = options.MessageId ?? (dueAt != 0 ? Guid.NewGuid() : Guid.Empty);
        return new Draft<T>(eventName, payload, headers, id, expiresAt, dueAt);
    }

    private static IReadOnlyDictionary<string, string> FreezeHeaders(IReadOnlyDictionary<string, string>? headers, int maxLength, string paramName = "options")
    {
        if (headers is null || headers.Count == 0)
        {
            return FrozenDictionary<string, string>.Empty;
        }

        long length = 0;
        foreach (KeyValuePair<string, string> header in headers)
        {
            // The W3C trace context, within its standard's bounds, is not counted: turning tracing on must not make a
            // publish that fits fail. Longer values under those names count like any header.
            if (!BrokerTelemetry.IsBoundedTraceContext(header.Key, header.Value))
            {
                length += (header.Key?.Length ?? 0) + (header.Value?.Length ?? 0);
            }

            if (string.IsNullOrEmpty(header.Key))
            {
                throw new ArgumentException("A header name is null or empty; give every header a name.", paramName);
            }

            if (header.Value is null)
            {
                throw new ArgumentException($"Header '{header.Key}' has a null value; use an empty string for an empty value.", paramName);
            }
        }

        if (length > maxLength)
        {
            throw new ArgumentException(
                $"The headers hold {length} characters (names and values); BrokerOptions.MaxHeadersLength allows {maxLength}. Send fewer or shorter headers, or raise the limit. Nothing was published.",
                paramName);
        }

        // Immutable dictionaries cannot change under us; anything else is copied so that the
        // envelope stays immutable.
        return headers is FrozenDictionary<string, string> or ImmutableDictionary<string, string>
            ? headers
            : headers.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
