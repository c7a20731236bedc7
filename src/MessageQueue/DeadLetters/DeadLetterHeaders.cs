using System.Collections.Frozen;
using System.Globalization;

namespace MessageQueue;

/// <summary>
/// The headers a dead letter carries (<see cref="MessageHeaders"/>): why it was dead-lettered, where from, after how many
/// attempts, and its delivery history. One place for the broker and every transport, so that a dead letter reads the
/// same wherever it came from; replay takes them off again.
/// </summary>
public static class DeadLetterHeaders
{
    /// <summary>The header names the broker writes on a dead letter; a replayed message leaves them behind.</summary>
    private static readonly FrozenSet<string> Names = new[]
    {
        MessageHeaders.DeadLetterReason, MessageHeaders.DeadLetterDetail, MessageHeaders.SourceQueue, MessageHeaders.SourceSequence,
        MessageHeaders.SourceSubscription, MessageHeaders.Attempts, MessageHeaders.DeadLetteredAt, MessageHeaders.FirstDeliveredAt,
        MessageHeaders.LastDeliveredAt, MessageHeaders.LastExceptionType, MessageHeaders.LastExceptionMessage,
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="name"/> is one of the headers the broker writes on a dead letter.</summary>
    /// <param name="name">A header name.</param>
    /// <returns><see langword="true"/> for a dead-letter header, which replay takes off again.</returns>
    public static bool IsDeadLetterHeader(string name) => Names.Contains(name);

    /// <summary>
    /// The headers of a message as a dead letter: its own, and the dead-letter ones (reason, detail, source queue,
    /// sequence and subscription, attempts, dead-lettered at), written as the broker writes them. For a transport that
    /// dead-letters on its own, so that its dead letters read the same as the broker's.
    /// </summary>
    /// <param name="headers">The message's own headers.</param>
    /// <param name="queue">The queue it is dead-lettered from.</param>
    /// <param name="subscription">The durable subscription that dead-lettered it; <see langword="null"/> for an ephemeral one (the header is then empty).</param>
    /// <param name="sequence">Its sequence in <paramref name="queue"/>.</param>
    /// <param name="attempts">How many times it was delivered to that subscription.</param>
    /// <param name="reason">Why: one of <see cref="DeadLetterReasons"/>.</param>
    /// <param name="detail">The reason text of a reject, or <see langword="null"/>; an empty text is left out.</param>
    /// <param name="deadLetteredAt">When it was dead-lettered.</param>
    /// <returns>A new dictionary with the message's headers and the dead-letter ones.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="headers"/>, <paramref name="queue"/> or <paramref name="reason"/> is null.</exception>
    public static Dictionary<string, string> Create(IReadOnlyDictionary<string, string> headers, string queue, string? subscription, long sequence, int attempts, string reason, string? detail, DateTimeOffset deadLetteredAt)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(reason);
        var deadLetter = new Dictionary<string, string>(headers, StringComparer.Ordinal)
        {
            [MessageHeaders.DeadLetterReason] = reason,
            [MessageHeaders.SourceQueue] = queue,
            [MessageHeaders.SourceSequence] = sequence.ToString(CultureInfo.InvariantCulture),
            [MessageHeaders.SourceSubscription] = subscription ?? string.Empty,
            [MessageHeaders.Attempts] = attempts.ToString(CultureInfo.InvariantCulture),
            [MessageHeaders.DeadLetteredAt] = deadLetteredAt.ToString("O", CultureInfo.InvariantCulture),
        };
        if (!string.IsNullOrEmpty(detail))
        {
            deadLetter[MessageHeaders.DeadLetterDetail] = detail;
        }

        return deadLetter;
    }

    /// <summary>The headers of <paramref name="message"/> as a dead letter of <paramref name="queue"/>: its own, and the dead-letter ones.</summary>
    /// <param name="message">The message.</param>
    /// <param name="queue">The queue it is dead-lettered from.</param>
    /// <param name="subscription">The durable subscription that dead-lettered it, or null.</param>
    /// <param name="attempts">How many times it was delivered to that subscription.</param>
    /// <param name="reason">One of <see cref="DeadLetterReasons"/>.</param>
    /// <param name="detail">The reason text of a reject, or null.</param>
    /// <param name="history">Its delivery history, or null when it was never delivered.</param>
    /// <param name="time">The clock: dead-lettered-at is now, and history times are monotonic timestamps turned into wall-clock times relative to now.</param>
    internal static FrozenDictionary<string, string> Create<T>(Message<T> message, string queue, string? subscription, int attempts, string reason, string? detail, DeliveryHistory? history, TimeProvider time)
    {
        DateTimeOffset now = time.GetUtcNow();
        long nowTimestamp = time.GetTimestamp();
        Dictionary<string, string> headers = Create(message.Headers, queue, subscription, message.Sequence, attempts, reason, detail, now);

        if (history is not null)
        {
            headers[MessageHeaders.FirstDeliveredAt] = (now - time.GetElapsedTime(history.FirstDeliveredAt, nowTimestamp)).ToString("O", CultureInfo.InvariantCulture);
            headers[MessageHeaders.LastDeliveredAt] = (now - time.GetElapsedTime(history.LastDeliveredAt, nowTimestamp)).ToString("O", CultureInfo.InvariantCulture);
            if (history.LastErrorType is { } errorType)
            {
                headers[MessageHeaders.LastExceptionType] = errorType;
                headers[MessageHeaders.LastExceptionMessage] = history.LastErrorMessage ?? string.Empty;
            }
        }

        return headers.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>The headers of a dead letter moved back by replay: the dead-letter ones left behind, and the replay count raised by one.</summary>
    internal static FrozenDictionary<string, string> ForReplay(IReadOnlyDictionary<string, string> headers)
    {
        var replayed = new Dictionary<string, string>(headers.Count, StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> header in headers)
        {
            if (!Names.Contains(header.Key))
            {
                replayed[header.Key] = header.Value;
            }
        }

        int count = headers.TryGetValue(MessageHeaders.ReplayCount, out string? previous) && int.TryParse(previous, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0;
        replayed[MessageHeaders.ReplayCount] = (count + 1).ToString(CultureInfo.InvariantCulture);
        return replayed.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
