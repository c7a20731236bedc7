using System.Diagnostics.CodeAnalysis;

namespace MessageQueue;

/// <summary>What every publisher checks about a payload, so that the broker, its clients and the transports agree.</summary>
internal static class Payloads
{
    /// <summary>
    /// Refuses a null payload: a null reference, or a nullable value type without a value. A message always carries
    /// one: subscribers read <see cref="Message{T}.Payload"/> without checking, and durable queues and transports
    /// serialize it. For a non-nullable value type the JIT drops the check.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="payload"/> is null.</exception>
    public static void ThrowIfNull<T>([NotNull] T payload, string queue, string eventName)
    {
        if (payload is null)
        {
            throw new ArgumentNullException(nameof(payload), NullPayloadMessage(queue, eventName));
        }
    }

    private static string NullPayloadMessage(string queue, string eventName) =>
        $"The payload of the publish to queue '{queue}' ('{eventName}') is null; a message must carry a payload. " +
        "For an event with no data, publish an empty record (such as 'public sealed record CacheCleared;') instead of null. Nothing was published.";
}
