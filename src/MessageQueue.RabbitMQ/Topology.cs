using System.Globalization;
using System.Text;
using RabbitMQ.Client;

namespace MessageQueue.RabbitMQ;

/// <summary>
/// How MessageQueue names map onto RabbitMQ objects. A queue is a durable topic exchange of the same name; an
/// event is a routing key; a durable subscription is a quorum queue named "queue:subscription" (':' cannot occur
/// in a MessageQueue name, so two pairs never collide); an ephemeral subscription is a server-named exclusive
/// queue. A queue's dead letters go to the exchange "queue.$dlq", whose retained queue of the same name keeps the
/// newest of them.
/// </summary>
internal static class Topology
{
    /// <summary>The header that carries the publisher's per-queue sequence number.</summary>
    public const string SequenceHeader = "mq-sequence";

    public static string DurableQueueName(string queue, string subscription) => queue + ":" + subscription;

    public static string DeadLetterExchange(string queue) =>
        queue.EndsWith(MessageRules.DeadLetterQueueSuffix, StringComparison.Ordinal) ? queue : queue + MessageRules.DeadLetterQueueSuffix;

    public static Dictionary<string, object?> DurableQueueArguments(string queue, SubscriptionOptions options)
    {
        var arguments = new Dictionary<string, object?>
        {
            ["x-queue-type"] = "quorum",
            // A backstop for deliveries that come back without a nack (a consumer that crashed each time): the
            // transport itself dead-letters on the last failed attempt, with the reason and history in headers.
            ["x-delivery-limit"] = options.MaxDeliveries,
            ["x-dead-letter-exchange"] = DeadLetterExchange(queue),
        };
        if (options.Exclusive == ExclusiveMode.Standby)
        {
            arguments["x-single-active-consumer"] = true;
        }

        return arguments;
    }

    public static Dictionary<string, object?> EphemeralQueueArguments(string queue) => new()
    {
        ["x-dead-letter-exchange"] = DeadLetterExchange(queue),
    };

    public static Dictionary<string, object?> DeadLetterQueueArguments(int maxDeadLetters) => new()
    {
        ["x-max-length"] = maxDeadLetters,
        ["x-overflow"] = "drop-head",
    };

    /// <summary>The message's headers as strings; RabbitMQ hands string values over as UTF-8 bytes.</summary>
    public static Dictionary<string, string> ReadHeaders(IReadOnlyBasicProperties properties, out long sequence, out int deliveryCount)
    {
        var headers = new Dictionary<string, string>(StringComparer.Ordinal);
        sequence = 0;
        deliveryCount = 0;
        if (properties.Headers is not { } raw)
        {
            return headers;
        }

        string? deathReason = null;
        foreach (KeyValuePair<string, object?> header in raw)
        {
            switch (header.Key)
            {
                case SequenceHeader:
                    _ = long.TryParse(AsString(header.Value), NumberStyles.None, CultureInfo.InvariantCulture, out sequence);
                    break;
                case "x-delivery-count":
                    deliveryCount = header.Value switch
                    {
                        long l => (int)l,
                        int i => i,
                        _ => 0,
                    };
                    break;
                case "x-death":
                    deathReason = FirstDeathReason(header.Value);
                    break;
                default:
                    if (AsString(header.Value) is { } text)
                    {
                        headers[header.Key] = text;
                    }

                    break;
            }
        }

        // Dead-lettered by RabbitMQ itself (delivery limit, TTL) rather than by the transport: say why, in the
        // same header the transport and the in-memory broker use.
        if (deathReason is not null && !headers.ContainsKey(MessageHeaders.DeadLetterReason))
        {
            headers[MessageHeaders.DeadLetterReason] = deathReason switch
            {
                "delivery_limit" => DeadLetterReasons.MaxDeliveries,
                "expired" => DeadLetterReasons.Expired,
                "maxlen" => DeadLetterReasons.Overflow,
                _ => DeadLetterReasons.Rejected,
            };
        }

        return headers;
    }

    private static string? AsString(object? value) => value switch
    {
        byte[] bytes => Encoding.UTF8.GetString(bytes),
        string text => text,
        null => null,
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => null,
    };

    private static string? FirstDeathReason(object? value)
    {
        if (value is IList<object> deaths && deaths.Count > 0 && deaths[0] is IDictionary<string, object?> death
            && death.TryGetValue("reason", out object? reason))
        {
            return AsString(reason);
        }

        return null;
    }
}
