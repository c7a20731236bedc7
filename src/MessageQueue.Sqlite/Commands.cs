using System.Text.Json;
using MessageQueue.Persistence;
using Microsoft.Data.Sqlite;

namespace MessageQueue.Sqlite;

/// <summary>
/// The store's prepared statements, made once and reused by every batch (SQLite compiles each once). They run on the
/// connection's own handle through SQLitePCL: values are bound straight from the caller's fields and spans, so a batch
/// allocates no parameter objects, boxes or readers per row (a command of Microsoft.Data.Sqlite allocates all three
/// on every execution).
/// </summary>
internal sealed class Commands : IDisposable
{
    private readonly List<Statement> _all = [];
    private readonly Statement _insertMessage;
    private readonly Statement _deleteMessages;
    private readonly Statement _deleteAckRange;
    private readonly Statement _deleteDeliveryRange;
    private readonly Statement _insertAck;
    private readonly Statement _setDeliveries;
    private readonly Statement _setCursor;
    private readonly Statement _saveSubscription;
    private readonly Statement _deleteSubscription;
    private readonly Statement _deleteSubscriptionAcks;
    private readonly Statement _deleteSubscriptionDeliveries;
    private readonly Statement _insertScheduled;
    private readonly Statement _deleteScheduled;
    private readonly Statement _rememberId;
    private readonly Statement _forgetIds;
    private readonly Statement _setLastSequence;

    public Commands(SqliteConnection connection)
    {
        Statement Make(string sql, params string[] parameters)
        {
            var statement = new Statement(connection.Handle!, sql, parameters);
            _all.Add(statement);
            return statement;
        }

        _insertMessage = Make(
            "INSERT OR REPLACE INTO mq_messages(queue, sequence, id, event, payload, headers, timestamp, expires_at) VALUES ($q, $s, $id, $e, $p, $h, $t, $x)",
            "$q", "$s", "$id", "$e", "$p", "$h", "$t", "$x");
        _deleteMessages = Make("DELETE FROM mq_messages WHERE queue = $q AND sequence BETWEEN $a AND $b", "$q", "$a", "$b");
        _deleteAckRange = Make("DELETE FROM mq_acks WHERE queue = $q AND sequence BETWEEN $a AND $b", "$q", "$a", "$b");
        _deleteDeliveryRange = Make("DELETE FROM mq_deliveries WHERE queue = $q AND sequence BETWEEN $a AND $b", "$q", "$a", "$b");
        // An ack or a delivery count for a message or subscription already gone (evicted, removed, deleted) is not kept:
        // nothing would ever clean it up.
        _insertAck = Make(
            "INSERT OR IGNORE INTO mq_acks(queue, sequence, subscription) SELECT $q, $s, $n WHERE EXISTS (SELECT 1 FROM mq_messages WHERE queue = $q AND sequence = $s) AND EXISTS (SELECT 1 FROM mq_subscriptions WHERE queue = $q AND name = $n)",
            "$q", "$s", "$n");
        _setDeliveries = Make(
            "INSERT INTO mq_deliveries(queue, sequence, subscription, count) SELECT $q, $s, $n, $c WHERE EXISTS (SELECT 1 FROM mq_messages WHERE queue = $q AND sequence = $s) AND EXISTS (SELECT 1 FROM mq_subscriptions WHERE queue = $q AND name = $n) ON CONFLICT(queue, sequence, subscription) DO UPDATE SET count = excluded.count",
            "$q", "$s", "$n", "$c");
        _setCursor = Make("UPDATE mq_subscriptions SET cursor = max(cursor, $s) WHERE queue = $q AND name = $n", "$q", "$n", "$s");
        _saveSubscription = Make(
            "INSERT INTO mq_subscriptions(queue, name, filters, start_after, cursor) VALUES ($q, $n, $f, $a, 0) ON CONFLICT(queue, name) DO UPDATE SET filters = excluded.filters, start_after = excluded.start_after",
            "$q", "$n", "$f", "$a");
        _deleteSubscription = Make("DELETE FROM mq_subscriptions WHERE queue = $q AND name = $n", "$q", "$n");
        _deleteSubscriptionAcks = Make("DELETE FROM mq_acks WHERE queue = $q AND subscription = $n", "$q", "$n");
        _deleteSubscriptionDeliveries = Make("DELETE FROM mq_deliveries WHERE queue = $q AND subscription = $n", "$q", "$n");
        _insertScheduled = Make(
            "INSERT OR REPLACE INTO mq_scheduled(queue, id, ordinal, event, payload, headers, timestamp, expires_at, due_at, dedup_until) VALUES ($q, $id, $o, $e, $p, $h, $t, $x, $d, $u)",
            "$q", "$id", "$o", "$e", "$p", "$h", "$t", "$x", "$d", "$u");
        _deleteScheduled = Make("DELETE FROM mq_scheduled WHERE queue = $q AND id = $id", "$q", "$id");
        _rememberId = Make(
            "INSERT OR REPLACE INTO mq_dedup(queue, id, sequence, until) VALUES ($q, $id, $s, $u)",
            "$q", "$id", "$s", "$u");
        _forgetIds = Make("DELETE FROM mq_dedup WHERE queue = $q AND until <= $u", "$q", "$u");
        _setLastSequence = Make(
            "INSERT INTO mq_queues(name, last_sequence) VALUES ($q, $s) ON CONFLICT(name) DO UPDATE SET last_sequence = max(last_sequence, excluded.last_sequence)",
            "$q", "$s");
    }

    private static string? Headers(IReadOnlyDictionary<string, string> headers) =>
        headers.Count == 0 ? null : JsonSerializer.Serialize(headers.ToDictionary(StringComparer.Ordinal), SqliteJsonContext.Default.DictionaryStringString);

    private static long? Ticks(DateTimeOffset? time) => time?.UtcTicks;

    public void InsertMessage(StoredMessage message)
    {
        _insertMessage.Text(0, message.Queue)
            .Int(1, message.Sequence)
            .Blob(2, message.Id)
            .Text(3, message.Event)
            .Blob(4, message.Payload.Span)
            .Text(5, Headers(message.Headers))
            .Int(6, message.Timestamp.UtcTicks)
            .Int(7, Ticks(message.ExpiresAt))
            .Execute();
    }

    /// <summary>Removes messages <paramref name="first"/> to <paramref name="last"/> of a queue, one statement for the run.</summary>
    public void DeleteMessages(string queue, long first, long last) => _deleteMessages.Text(0, queue).Int(1, first).Int(2, last).Execute();

    public int DeleteAckRange(string queue, long first, long last) => _deleteAckRange.Text(0, queue).Int(1, first).Int(2, last).Execute();

    public int DeleteDeliveryRange(string queue, long first, long last) => _deleteDeliveryRange.Text(0, queue).Int(1, first).Int(2, last).Execute();

    public int InsertAck(string queue, long sequence, string subscription) => _insertAck.Text(0, queue).Int(1, sequence).Text(2, subscription).Execute();

    /// <returns>1 when a row was added or updated (an update counts as added: overcounting only costs a cleanup statement later), 0 when the message or subscription is gone.</returns>
    public int SetDeliveries(string queue, long sequence, string subscription, int count) =>
        _setDeliveries.Text(0, queue).Int(1, sequence).Text(2, subscription).Int(3, count).Execute();

    public void SetCursor(string queue, string subscription, long sequence) => _setCursor.Text(0, queue).Text(1, subscription).Int(2, sequence).Execute();

    public void SaveSubscription(StoredSubscription subscription) => _saveSubscription
        .Text(0, subscription.Queue)
        .Text(1, subscription.Name)
        .Text(2, JsonSerializer.Serialize([.. subscription.Filters], SqliteJsonContext.Default.StringArray))
        .Int(3, subscription.StartAfter)
        .Execute();

    /// <returns>The ack rows removed; <paramref name="deliveries"/> gets the delivery rows removed.</returns>
    public int DeleteSubscription(string queue, string subscription, out int deliveries)
    {
        _deleteSubscription.Text(0, queue).Text(1, subscription).Execute();
        deliveries = _deleteSubscriptionDeliveries.Text(0, queue).Text(1, subscription).Execute();
        return _deleteSubscriptionAcks.Text(0, queue).Text(1, subscription).Execute();
    }

    public void InsertScheduled(StoredMessage message, long ordinal)
    {
        _insertScheduled.Text(0, message.Queue)
            .Blob(1, message.Id)
            .Int(2, ordinal)
            .Text(3, message.Event)
            .Blob(4, message.Payload.Span)
            .Text(5, Headers(message.Headers))
            .Int(6, message.Timestamp.UtcTicks)
            .Int(7, Ticks(message.ExpiresAt))
            .Int(8, message.DueAt?.UtcTicks ?? 0)
            .Int(9, Ticks(message.DeduplicateUntil))
            .Execute();
    }

    public void DeleteScheduled(string queue, Guid id) => _deleteScheduled.Text(0, queue).Blob(1, id).Execute();

    public void RememberId(string queue, Guid id, long sequence, DateTimeOffset until) =>
        _rememberId.Text(0, queue).Blob(1, id).Int(2, sequence).Int(3, until.UtcTicks).Execute();

    public void ForgetIds(string queue, DateTimeOffset until) => _forgetIds.Text(0, queue).Int(1, until.UtcTicks).Execute();

    public void SetLastSequence(string queue, long sequence) => _setLastSequence.Text(0, queue).Int(1, sequence).Execute();

    public void Dispose()
    {
        foreach (Statement statement in _all)
        {
            statement.Dispose();
        }
    }
}
