using System.Collections;

namespace MessageQueue.Testing;

/// <summary>
/// Records of what happened to messages, in the order it happened, with helpers to narrow them down. Each helper returns a
/// new, immutable list, so assertions read naturally:
/// <c>harness.Acked.ForEvent("order.created").Count.Should().Be(3)</c>.
/// </summary>
public sealed class MessageRecords : IReadOnlyList<MessageRecord>
{
    private readonly MessageRecord[] _records;

    internal MessageRecords(MessageRecord[] records) => _records = records;

    /// <inheritdoc/>
    public int Count => _records.Length;

    /// <inheritdoc/>
    public MessageRecord this[int index] => _records[index];

    /// <summary>Records of one kind.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns>The matching records, in order.</returns>
    public MessageRecords OfKind(MessageRecordKind kind) => Where(r => r.Kind == kind);

    /// <summary>Records of one queue.</summary>
    /// <param name="queue">The queue's name.</param>
    /// <returns>The matching records, in order.</returns>
    public MessageRecords ForQueue(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        return Where(r => string.Equals(r.Queue, queue, StringComparison.Ordinal));
    }

    /// <summary>Records whose event name matches <paramref name="filter"/>, with the broker's wildcards (<c>*</c> one token, <c>#</c> any number).</summary>
    /// <param name="filter">An event name such as <c>"order.created"</c>, or a filter such as <c>"order.*"</c>.</param>
    /// <returns>The matching records, in order.</returns>
    /// <exception cref="ArgumentException"><paramref name="filter"/> is not a valid topic filter.</exception>
    public MessageRecords ForEvent(string filter)
    {
        Names.ValidateFilter(filter, nameof(filter));
        TopicFilter parsed = TopicFilter.Parse(filter);
        return Where(r => parsed.Matches(r.Event));
    }

    /// <summary>
    /// Records of one durable subscription (by name), or of ephemeral subscriptions (<see langword="null"/>). Records of a
    /// queue itself (<see cref="MessageRecordKind.Published"/>) belong to no subscription and are never included.
    /// </summary>
    /// <remarks>
    /// Ephemeral subscriptions have no name, so <see langword="null"/> matches all of them, on every queue (narrow with
    /// <see cref="ForQueue"/>). To tell two subscriptions of one queue apart in the records, name them. The harness itself
    /// (its waits, <see cref="BrokerTestHarness.AdvanceTimeAsync"/> and the pending dump) always tells them apart.
    /// </remarks>
    /// <param name="subscription">The durable subscription's name, or <see langword="null"/>.</param>
    /// <returns>The matching records, in order.</returns>
    public MessageRecords ForSubscription(string? subscription) =>
        Where(r => r.Kind != MessageRecordKind.Published && string.Equals(r.Subscription, subscription, StringComparison.Ordinal));

    /// <summary>Records of one message.</summary>
    /// <param name="messageId">The message id (from its <see cref="PublishReceipt"/>, say).</param>
    /// <returns>The matching records, in order.</returns>
    public MessageRecords ForMessage(Guid messageId) => Where(r => r.MessageId == messageId);

    /// <summary>Records that satisfy <paramref name="predicate"/>.</summary>
    /// <param name="predicate">The condition.</param>
    /// <returns>The matching records, in order.</returns>
    public MessageRecords Where(Func<MessageRecord, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var matching = new List<MessageRecord>();
        foreach (MessageRecord record in _records)
        {
            if (predicate(record))
            {
                matching.Add(record);
            }
        }

        return new MessageRecords([.. matching]);
    }

    /// <summary>The payloads of these records, typed.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <returns>The payloads, in order.</returns>
    /// <exception cref="InvalidCastException">A record's payload is not a <typeparamref name="T"/>.</exception>
    public IReadOnlyList<T> Payloads<T>()
    {
        var payloads = new T[_records.Length];
        for (int i = 0; i < payloads.Length; i++)
        {
            payloads[i] = _records[i].GetPayload<T>();
        }

        return payloads;
    }

    /// <inheritdoc/>
    public IEnumerator<MessageRecord> GetEnumerator() => ((IEnumerable<MessageRecord>)_records).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _records.GetEnumerator();

    /// <inheritdoc/>
    public override string ToString() => _records.Length == 0 ? "(no records)" : string.Join(Environment.NewLine, (object[])_records);
}
