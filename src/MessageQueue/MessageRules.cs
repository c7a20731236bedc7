using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace MessageQueue;

/// <summary>
/// The rules the broker applies to names and payloads, for an implementation of <see cref="IPublisher"/> and
/// <see cref="ISubscriber"/> on another transport: it refuses what the broker refuses, with the same exception and the
/// same message. Application code does not need these; the broker checks its own input.
/// </summary>
public static class MessageRules
{
    /// <summary>The longest queue, subscription or client name, in characters.</summary>
    public const int MaxNameLength = Names.MaxNameLength;

    /// <summary>The longest event name or filter, in characters.</summary>
    public const int MaxEventNameLength = Names.MaxEventLength;

    /// <summary>What a queue's name ends with to make the name of its dead-letter queue (see <see cref="Broker.GetDeadLetterQueueName"/>).</summary>
    public const string DeadLetterQueueSuffix = Names.DeadLetterSuffix;

    /// <summary>Throws when <paramref name="queue"/> is not a valid queue name.</summary>
    /// <param name="queue">The name to check.</param>
    /// <param name="allowDeadLetterQueue">Whether a dead-letter queue's name (a valid name followed by <see cref="DeadLetterQueueSuffix"/>) is accepted, as it is to subscribe or read.</param>
    /// <param name="paramName">The caller's parameter name, filled in by the compiler.</param>
    /// <exception cref="ArgumentNullException"><paramref name="queue"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is empty, too long, or has a character outside letters, digits, '-', '_' and '.'; the message says which.</exception>
    public static void ThrowIfInvalidQueueName([NotNull] string? queue, bool allowDeadLetterQueue = false, [CallerArgumentExpression(nameof(queue))] string? paramName = null) =>
        Names.ValidateQueueName(queue, paramName ?? nameof(queue), allowDeadLetterQueue);

    /// <summary>Throws when <paramref name="eventName"/> is not a valid event name (dot-separated words, no wildcards).</summary>
    /// <param name="eventName">The name to check.</param>
    /// <param name="paramName">The caller's parameter name, filled in by the compiler.</param>
    /// <exception cref="ArgumentNullException"><paramref name="eventName"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is empty, too long, has an empty word or a wildcard; the message says which.</exception>
    public static void ThrowIfInvalidEventName([NotNull] string? eventName, [CallerArgumentExpression(nameof(eventName))] string? paramName = null) =>
        Names.ValidateEvent(eventName, paramName ?? nameof(eventName));

    /// <summary>Throws when <paramref name="filter"/> is not a valid filter (an event name, with <c>*</c> for one word and <c>#</c> for zero or more).</summary>
    /// <param name="filter">The filter to check.</param>
    /// <param name="paramName">The caller's parameter name, filled in by the compiler.</param>
    /// <exception cref="ArgumentNullException"><paramref name="filter"/> is null.</exception>
    /// <exception cref="ArgumentException">The filter is empty, too long, or misuses a wildcard; the message says which.</exception>
    public static void ThrowIfInvalidFilter([NotNull] string? filter, [CallerArgumentExpression(nameof(filter))] string? paramName = null) =>
        Names.ValidateFilter(filter, paramName ?? nameof(filter));

    /// <summary>Throws when <paramref name="clientName"/> is not a valid client name.</summary>
    /// <param name="clientName">The name to check.</param>
    /// <param name="paramName">The caller's parameter name, filled in by the compiler.</param>
    /// <exception cref="ArgumentNullException"><paramref name="clientName"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is blank, too long, starts with '$' or has a control character; the message says which.</exception>
    public static void ThrowIfInvalidClientName([NotNull] string? clientName, [CallerArgumentExpression(nameof(clientName))] string? paramName = null) =>
        Names.ValidateClientName(clientName, paramName ?? nameof(clientName));

    /// <summary>
    /// Throws when <paramref name="payload"/> is null (a null reference, or a nullable value type without a value): a
    /// message always carries a payload. The message names the queue and event, and says what to publish instead.
    /// </summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="payload">The payload to check.</param>
    /// <param name="queue">The queue it is being published to.</param>
    /// <param name="eventName">The event it is being published as.</param>
    /// <exception cref="ArgumentNullException"><paramref name="payload"/> is null.</exception>
    public static void ThrowIfNullPayload<T>([NotNull] T payload, string queue, string eventName)
    {
        // A message always carries a payload: subscribers read Message<T>.Payload without checking, and durable queues
        // and transports serialize it. For a non-nullable value type the JIT drops the check.
        if (payload is null)
        {
            throw new ArgumentNullException(
                nameof(payload),
                $"The payload of the publish to queue '{queue}' ('{eventName}') is null; a message must carry a payload. " +
                "For an event with no data, publish an empty record (such as 'public sealed record CacheCleared;') instead of null. Nothing was published.");
        }
    }
}
