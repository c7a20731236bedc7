using System.Text.Json;
using MessageQueue.Persistence;
using Microsoft.Data.Sqlite;

namespace MessageQueue.Sqlite;

/// <summary>The store's prepared statements, made once and reused by every batch (SQLite compiles each once).</summary>
internal sealed class Commands : IDisposable
{
    private readonly List<SqliteCommand> _all = [];
    private readonly SqliteCommand _insertMessage;
    private readonly SqliteCommand _deleteMessage;
    private readonly SqliteCommand _insertAck;
    private readonly SqliteCommand _deleteAcks;
    private readonly SqliteCommand _setDeliveries;
    private readonly SqliteCommand _deleteDeliveries;
    private readonly SqliteCommand _setCursor;
    private readonly SqliteCommand _saveSubscription;
    private readonly SqliteCommand _deleteSubscription;
    private readonly SqliteCommand _deleteSubscriptionAcks;
    private readonly SqliteCommand _deleteSubscriptionDeliveries;
    private readonly SqliteCommand _insertScheduled;
    private readonly SqliteCommand _deleteScheduled;
    private readonly SqliteCommand _rememberId;
    private readonly SqliteCommand _forgetIds;
    private readonly SqliteCommand _setLastSequence;

    public Commands(SqliteConnection connection)
    {
        SqliteCommand Make(string sql, params (string Name, SqliteType Type)[] parameters)
        {
            SqliteCommand command = connection.CreateCommand();
            command.CommandText = sql;
            foreach ((string name, SqliteType type) in parameters)
            {
                command.Parameters.Add(name, type);
            }

            command.Prepare();
            _all.Add(command);
            return command;
        }

        (string, SqliteType) Text(string name) => (name, SqliteType.Text);
        (string, SqliteType) Int(string name) => (name, SqliteType.Integer);
        (string, SqliteType) Blob(string name) => (name, SqliteType.Blob);

        _insertMessage = Make(
            "INSERT OR REPLACE INTO mq_messages(queue, sequence, id, event, payload, headers, timestamp, expires_at) VALUES ($q, $s, $id, $e, $p, $h, $t, $x)",
            Text("$q"), Int("$s"), Blob("$id"), Text("$e"), Blob("$p"), Text("$h"), Int("$t"), Int("$x"));
        _deleteMessage = Make("DELETE FROM mq_messages WHERE queue = $q AND sequence = $s", Text("$q"), Int("$s"));
        // An ack or a delivery count for a message or subscription already gone (evicted, removed, deleted) is not kept:
        // nothing would ever clean it up.
        _insertAck = Make(
            "INSERT OR IGNORE INTO mq_acks(queue, sequence, subscription) SELECT $q, $s, $n WHERE EXISTS (SELECT 1 FROM mq_messages WHERE queue = $q AND sequence = $s) AND EXISTS (SELECT 1 FROM mq_subscriptions WHERE queue = $q AND name = $n)",
            Text("$q"), Int("$s"), Text("$n"));
        _deleteAcks = Make("DELETE FROM mq_acks WHERE queue = $q AND sequence = $s", Text("$q"), Int("$s"));
        _setDeliveries = Make(
            "INSERT INTO mq_deliveries(queue, sequence, subscription, count) SELECT $q, $s, $n, $c WHERE EXISTS (SELECT 1 FROM mq_messages WHERE queue = $q AND sequence = $s) AND EXISTS (SELECT 1 FROM mq_subscriptions WHERE queue = $q AND name = $n) ON CONFLICT(queue, sequence, subscription) DO UPDATE SET count = excluded.count",
            Text("$q"), Int("$s"), Text("$n"), Int("$c"));
        _deleteDeliveries = Make("DELETE FROM mq_deliveries WHERE queue = $q AND sequence = $s", Text("$q"), Int("$s"));
        _setCursor = Make("UPDATE mq_subscriptions SET cursor = max(cursor, $s) WHERE queue = $q AND name = $n", Text("$q"), Text("$n"), Int("$s"));
        _saveSubscription = Make(
            "INSERT INTO mq_subscriptions(queue, name, filters, start_after, cursor) VALUES ($q, $n, $f, $a, 0) ON CONFLICT(queue, name) DO UPDATE SET filters = excluded.filters, start_after = excluded.start_after",
            Text("$q"), Text("$n"), Text("$f"), Int("$a"));
        _deleteSubscription = Make("DELETE FROM mq_subscriptions WHERE queue = $q AND name = $n", Text("$q"), Text("$n"));
        _deleteSubscriptionAcks = Make("DELETE FROM mq_acks WHERE queue = $q AND subscription = $n", Text("$q"), Text("$n"));
        _deleteSubscriptionDeliveries = Make("DELETE FROM mq_deliveries WHERE queue = $q AND subscription = $n", Text("$q"), Text("$n"));
        _insertScheduled = Make(
            "INSERT OR REPLACE INTO mq_scheduled(queue, id, ordinal, event, payload, headers, timestamp, expires_at, due_at, dedup_until) VALUES ($q, $id, $o, $e, $p, $h, $t, $x, $d, $u)",
            Text("$q"), Blob("$id"), Int("$o"), Text("$e"), Blob("$p"), Text("$h"), Int("$t"), Int("$x"), Int("$d"), Int("$u"));
        _deleteScheduled = Make("DELETE FROM mq_scheduled WHERE queue = $q AND id = $id", Text("$q"), Blob("$id"));
        _rememberId = Make(
            "INSERT OR REPLACE INTO mq_dedup(queue, id, sequence, until) VALUES ($q, $id, $s, $u)",
            Text("$q"), Blob("$id"), Int("$s"), Int("$u"));
        _forgetIds = Make("DELETE FROM mq_dedup WHERE queue = $q AND until <= $u", Text("$q"), Int("$u"));
        _setLastSequence = Make(
            "INSERT INTO mq_queues(name, last_sequence) VALUES ($q, $s) ON CONFLICT(name) DO UPDATE SET last_sequence = max(last_sequence, excluded.last_sequence)",
            Text("$q"), Int("$s"));
    }

    public void Enlist(SqliteTransaction transaction)
    {
        foreach (SqliteCommand command in _all)
        {
            command.Transaction = transaction;
        }
    }

    private static int Run(SqliteCommand command, params object?[] values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            command.Parameters[i].Value = values[i] ?? DBNull.Value;
        }

        return command.ExecuteNonQuery();
    }

    private static string? Headers(IReadOnlyDictionary<string, string> headers) =>
        headers.Count == 0 ? null : JsonSerializer.Serialize(headers.ToDictionary(StringComparer.Ordinal), SqliteJsonContext.Default.DictionaryStringString);

    private static long? Ticks(DateTimeOffset? time) => time?.UtcTicks;

    public void InsertMessage(StoredMessage message) => Run(
        _insertMessage,
        message.Queue,
        message.Sequence,
        message.Id.ToByteArray(),
        message.Event,
        SqliteMessageStore.Bytes(message.Payload),
        Headers(message.Headers),
        message.Timestamp.UtcTicks,
        Ticks(message.ExpiresAt));

    public void DeleteMessage(string queue, long sequence) => Run(_deleteMessage, queue, sequence);

    public int InsertAck(string queue, long sequence, string subscription) => Run(_insertAck, queue, sequence, subscription);

    public int DeleteAcks(string queue, long sequence) => Run(_deleteAcks, queue, sequence);

    /// <returns>1 when a row was added or updated (an update counts as added: overcounting only costs a cleanup statement later), 0 when the message or subscription is gone.</returns>
    public int SetDeliveries(string queue, long sequence, string subscription, int count) => Run(_setDeliveries, queue, sequence, subscription, count);

    public int DeleteDeliveries(string queue, long sequence) => Run(_deleteDeliveries, queue, sequence);

    public void SetCursor(string queue, string subscription, long sequence) => Run(_setCursor, queue, subscription, sequence);

    public void SaveSubscription(StoredSubscription subscription) => Run(
        _saveSubscription,
        subscription.Queue,
        subscription.Name,
        JsonSerializer.Serialize([.. subscription.Filters], SqliteJsonContext.Default.StringArray),
        subscription.StartAfter);

    /// <returns>The ack rows removed; <paramref name="deliveries"/> gets the delivery rows removed.</returns>
    public int DeleteSubscription(string queue, string subscription, out int deliveries)
    {
        Run(_deleteSubscription, queue, subscription);
        deliveries = Run(_deleteSubscriptionDeliveries, queue, subscription);
        return Run(_deleteSubscriptionAcks, queue, subscription);
    }

    public void InsertScheduled(StoredMessage message, long ordinal) => Run(
        _insertScheduled,
        message.Queue,
        message.Id.ToByteArray(),
        ordinal,
        message.Event,
        SqliteMessageStore.Bytes(message.Payload),
        Headers(message.Headers),
        message.Timestamp.UtcTicks,
        Ticks(message.ExpiresAt),
        message.DueAt?.UtcTicks ?? 0,
        Ticks(message.DeduplicateUntil));

    public void DeleteScheduled(string queue, Guid id) => Run(_deleteScheduled, queue, id.ToByteArray());

    public void RememberId(string queue, Guid id, long sequence, DateTimeOffset until) => Run(_rememberId, queue, id.ToByteArray(), sequence, until.UtcTicks);

    public void ForgetIds(string queue, DateTimeOffset until) => Run(_forgetIds, queue, until.UtcTicks);

    public void SetLastSequence(string queue, long sequence) => Run(_setLastSequence, queue, sequence);

    public void Dispose()
    {
        foreach (SqliteCommand command in _all)
        {
            command.Dispose();
        }
    }
}
