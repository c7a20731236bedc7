using System.Globalization;

namespace MessageQueue.Testing;

/// <summary>
/// One step in the life of a message: as the <see cref="BrokerTestHarness"/> saw it, or, for a message a
/// <see cref="RecordingPublisher"/> accepted, its publish (<see cref="MessageRecordKind.Published"/>).
/// </summary>
public sealed class MessageRecord
{
    internal MessageRecord(
        MessageRecordKind kind,
        string queue,
        string? subscription,
        SubscriptionKey? subscriptionKey,
        Guid messageId,
        long sequence,
        string eventName,
        object? payload,
        int attempt,
        TimeSpan? delay,
        string? reason,
        IReadOnlyDictionary<string, string>? headers,
        DateTimeOffset time,
        Type? payloadType,
        PublishOptions options = default)
    {
        Kind = kind;
        Queue = queue;
        Subscription = subscription;
        SubscriptionKey = subscriptionKey;
        MessageId = messageId;
        Sequence = sequence;
        Event = eventName;
        Payload = payload;
        Attempt = attempt;
        Delay = delay;
        Reason = reason;
        Headers = headers ?? EmptyHeaders;
        Time = time;
        PayloadType = payloadType;
        Options = options;
    }

    private static readonly IReadOnlyDictionary<string, string> EmptyHeaders = System.Collections.Frozen.FrozenDictionary<string, string>.Empty;

    /// <summary>Tells the record's subscription apart from others on the queue, ephemeral ones included (see SubscriptionSnapshot.Id).</summary>
    internal SubscriptionKey? SubscriptionKey { get; }

    /// <summary>Gets what happened.</summary>
    public MessageRecordKind Kind { get; }

    /// <summary>Gets the queue the message was published to (for <see cref="MessageRecordKind.DeadLettered"/>: the queue it came from).</summary>
    public string Queue { get; }

    /// <summary>Gets the durable subscription's name; <see langword="null"/> for an ephemeral one, or for a record of the queue itself (published).</summary>
    public string? Subscription { get; }

    /// <summary>Gets the message id.</summary>
    public Guid MessageId { get; }

    /// <summary>Gets the message's sequence in its queue.</summary>
    public long Sequence { get; }

    /// <summary>Gets the message's event name.</summary>
    public string Event { get; }

    /// <summary>Gets the payload, or <see langword="null"/> for a drop (the broker no longer has it). Use <see cref="GetPayload{T}"/> for a typed view.</summary>
    public object? Payload { get; }

    /// <summary>Gets the attempt number of the delivery; 0 for records of the queue itself (published, dropped).</summary>
    public int Attempt { get; }

    /// <summary>
    /// Gets, for <see cref="MessageRecordKind.Nacked"/>, how long until the message comes back (<see cref="TimeSpan.Zero"/>: at once);
    /// <see langword="null"/> otherwise, and for a nack on the last attempt (the message is dead-lettered).
    /// </summary>
    public TimeSpan? Delay { get; }

    /// <summary>
    /// Gets the reason: the reject reason, the dead-letter reason (<see cref="DeadLetterReasons"/>), the drop reason,
    /// or the handler exception's message for a nack after a failure. <see langword="null"/> when there is none.
    /// </summary>
    public string? Reason { get; }

    /// <summary>Gets the headers the message was published with (for <see cref="MessageRecordKind.Published"/>); empty otherwise.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; }

    /// <summary>Gets when it happened, on the harness's clock (or the <see cref="RecordingPublisher"/>'s).</summary>
    public DateTimeOffset Time { get; }

    /// <summary>
    /// Gets the payload type of the message (the <c>T</c> it was published with); <see langword="null"/> for a drop, whose
    /// payload the broker no longer has.
    /// </summary>
    public Type? PayloadType { get; }

    /// <summary>
    /// Gets the options a <see cref="RecordingPublisher"/> was given for this message (headers, time to live, delay,
    /// message id). On a <see cref="BrokerTestHarness"/>'s records this is the default: the broker keeps the headers
    /// (<see cref="Headers"/>), the id and the sequence, not the options themselves.
    /// </summary>
    public PublishOptions Options { get; }

    /// <summary>Gets the payload as <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">The queue's payload type.</typeparam>
    /// <returns>The payload.</returns>
    /// <exception cref="InvalidCastException">The payload is not a <typeparamref name="T"/>; the message names both types.</exception>
    public T GetPayload<T>() => Payload is T typed
        ? typed
        : Payload is null && default(T) is null ? default! : throw new InvalidCastException($"The payload of {this} is {(Payload is null ? "null" : (PayloadType ?? Payload.GetType()).Name)}, not {typeof(T).Name}.");

    /// <inheritdoc/>
    public override string ToString()
    {
        string where = Subscription is null ? Queue : $"{Queue}/{Subscription}";
        string attempt = Attempt > 0 ? string.Create(CultureInfo.InvariantCulture, $" attempt {Attempt}") : string.Empty;
        string delay = Delay is { } d ? string.Create(CultureInfo.InvariantCulture, $" delay {d}") : string.Empty;
        string reason = Reason is null ? string.Empty : $" ({Reason})";
        return string.Create(CultureInfo.InvariantCulture, $"{Kind} {where}#{Sequence} '{Event}'{attempt}{delay}{reason}");
    }
}
