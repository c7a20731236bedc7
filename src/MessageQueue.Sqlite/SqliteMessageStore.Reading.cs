using System.Globalization;
using System.Text.Json;
using MessageQueue.Persistence;
using Microsoft.Data.Sqlite;

namespace MessageQueue.Sqlite;

/// <summary>The store's reads: everything at start (<see cref="Load"/>, <see cref="LoadQueues"/>) and one page of a queue's messages (<see cref="ReadMessages"/>).</summary>
public sealed partial class SqliteMessageStore
{
    /// <inheritdoc/>
    public IReadOnlyList<StoredQueueState> Load() => Reading(() => LoadCore(withMessages: true), "load");

    /// <inheritdoc/>
    public IReadOnlyList<StoredQueueState> LoadQueues() => Reading(() => LoadCore(withMessages: false), "load");

    /// <inheritdoc/>
    public StoredQueueState ReadMessages(string queue, long afterSequence, int maxMessages)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentOutOfRangeException.ThrowIfNegative(afterSequence);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        return Reading(() => ReadPage(queue, afterSequence, maxMessages), "read");
    }

    private TResult Reading<TResult>(Func<TResult> read, string doing)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            return read();
        }
        catch (SqliteException exception)
        {
            throw Translate(exception, Path, doing);
        }
    }

    private StoredQueueState ReadPage(string queue, long afterSequence, int maxMessages)
    {
        var messages = new List<StoredMessage>(Math.Min(maxMessages, 4096));
        ForEachRow(
            "SELECT sequence, id, event, payload, headers, timestamp, expires_at FROM mq_messages WHERE queue = $q AND sequence > $a ORDER BY sequence LIMIT $n",
            command =>
            {
                command.Parameters.AddWithValue("$q", queue);
                command.Parameters.AddWithValue("$a", afterSequence);
                command.Parameters.AddWithValue("$n", maxMessages);
            },
            reader => messages.Add(ReadMessage(queue, reader, 0)));

        var subscriptions = new Dictionary<string, (StoredSubscription Subscription, long Cursor, HashSet<long> Acked, Dictionary<long, int> Deliveries)>(StringComparer.Ordinal);
        ForEachRow(
            "SELECT queue, name, filters, start_after, cursor FROM mq_subscriptions WHERE queue = $q",
            command => command.Parameters.AddWithValue("$q", queue),
            reader => subscriptions[reader.GetString(1)] = (ReadSubscription(reader), reader.GetInt64(4), [], []));
        if (messages.Count > 0)
        {
            void Range(SqliteCommand command)
            {
                command.Parameters.AddWithValue("$q", queue);
                command.Parameters.AddWithValue("$a", messages[0].Sequence);
                command.Parameters.AddWithValue("$b", messages[^1].Sequence);
            }

            ForEachRow("SELECT sequence, subscription FROM mq_acks WHERE queue = $q AND sequence BETWEEN $a AND $b", Range, reader =>
            {
                if (subscriptions.TryGetValue(reader.GetString(1), out var state))
                {
                    state.Acked.Add(reader.GetInt64(0));
                }
            });
            ForEachRow("SELECT sequence, subscription, count FROM mq_deliveries WHERE queue = $q AND sequence BETWEEN $a AND $b", Range, reader =>
            {
                if (subscriptions.TryGetValue(reader.GetString(1), out var state))
                {
                    state.Deliveries[reader.GetInt64(0)] = reader.GetInt32(2);
                }
            });
        }

        return new StoredQueueState
        {
            Name = queue,
            LastSequence = _lastSequences.GetValueOrDefault(queue),
            Messages = messages,
            Subscriptions = [.. subscriptions.Values.Select(s => new StoredSubscriptionState
            {
                Subscription = s.Subscription,
                Cursor = s.Cursor,
                Acked = s.Acked,
                Deliveries = s.Deliveries,
            })],
        };
    }

    /// <summary>A row of mq_messages whose sequence is at <paramref name="first"/>, then id, event, payload, headers, timestamp and expiry.</summary>
    private static StoredMessage ReadMessage(string queue, SqliteDataReader reader, int first) => new()
    {
        Queue = queue,
        Sequence = reader.GetInt64(first),
        Id = new Guid((byte[])reader.GetValue(first + 1)),
        Event = reader.GetString(first + 2),
        Payload = (byte[])reader.GetValue(first + 3),
        Headers = ReadHeaders(reader, first + 4),
        Timestamp = Time(reader.GetInt64(first + 5)),
        ExpiresAt = OptionalTime(reader, first + 6),
    };

    private static StoredSubscription ReadSubscription(SqliteDataReader reader) => new()
    {
        Queue = reader.GetString(0),
        Name = reader.GetString(1),
        Filters = JsonSerializer.Deserialize(reader.GetString(2), SqliteJsonContext.Default.StringArray) ?? [],
        StartAfter = reader.GetInt64(3),
    };

    private sealed class LoadedQueue(string name)
    {
        public string Name { get; } = name;

        public long LastSequence { get; set; }

        public List<StoredMessage> Messages { get; } = [];

        public long MessageCount { get; set; }

        public List<StoredMessage> Scheduled { get; } = [];

        public Dictionary<string, (StoredSubscription Subscription, long Cursor, HashSet<long> Acked, Dictionary<long, int> Deliveries)> Subscriptions { get; } = new(StringComparer.Ordinal);

        public List<StoredId> Ids { get; } = [];
    }

    private List<StoredQueueState> LoadCore(bool withMessages)
    {
        var queues = new Dictionary<string, LoadedQueue>(StringComparer.Ordinal);
        LoadedQueue QueueNamed(string name)
        {
            if (!queues.TryGetValue(name, out LoadedQueue? queue))
            {
                queue = new LoadedQueue(name);
                queues.Add(name, queue);
            }

            return queue;
        }

        ForEachRow("SELECT name, last_sequence FROM mq_queues", reader =>
        {
            QueueNamed(reader.GetString(0)).LastSequence = reader.GetInt64(1);
            _lastSequences[reader.GetString(0)] = reader.GetInt64(1);
        });
        if (withMessages)
        {
            ForEachRow("SELECT queue, sequence, id, event, payload, headers, timestamp, expires_at FROM mq_messages ORDER BY queue, sequence", reader =>
                QueueNamed(reader.GetString(0)).Messages.Add(ReadMessage(reader.GetString(0), reader, 1)));
        }
        else
        {
            ForEachRow("SELECT queue, count(*) FROM mq_messages GROUP BY queue", reader => QueueNamed(reader.GetString(0)).MessageCount = reader.GetInt64(1));
        }

        ForEachRow("SELECT queue, id, event, payload, headers, timestamp, expires_at, due_at, dedup_until, ordinal FROM mq_scheduled ORDER BY queue, ordinal", reader =>
        {
            QueueNamed(reader.GetString(0)).Scheduled.Add(new StoredMessage
            {
                Queue = reader.GetString(0),
                Sequence = 0,
                Id = new Guid((byte[])reader.GetValue(1)),
                Event = reader.GetString(2),
                Payload = (byte[])reader.GetValue(3),
                Headers = ReadHeaders(reader, 4),
                Timestamp = Time(reader.GetInt64(5)),
                ExpiresAt = OptionalTime(reader, 6),
                DueAt = Time(reader.GetInt64(7)),
                DeduplicateUntil = OptionalTime(reader, 8),
            });
            _scheduledOrdinal = Math.Max(_scheduledOrdinal, reader.GetInt64(9));
        });
        ForEachRow("SELECT queue, name, filters, start_after, cursor FROM mq_subscriptions", reader =>
        {
            StoredSubscription subscription = ReadSubscription(reader);
            QueueNamed(subscription.Queue).Subscriptions[subscription.Name] = (subscription, reader.GetInt64(4), [], []);
        });
        if (withMessages)
        {
            _ackRows = 0;
            ForEachRow("SELECT queue, sequence, subscription FROM mq_acks", reader =>
            {
                _ackRows++;
                if (QueueNamed(reader.GetString(0)).Subscriptions.TryGetValue(reader.GetString(2), out var state))
                {
                    state.Acked.Add(reader.GetInt64(1));
                }
            });
            _deliveryRows = 0;
            ForEachRow("SELECT queue, sequence, subscription, count FROM mq_deliveries", reader =>
            {
                _deliveryRows++;
                if (QueueNamed(reader.GetString(0)).Subscriptions.TryGetValue(reader.GetString(2), out var state))
                {
                    state.Deliveries[reader.GetInt64(1)] = reader.GetInt32(3);
                }
            });
        }
        else
        {
            // The acks and delivery counts come with each page of messages; only how many rows there are is needed now.
            _ackRows = Convert.ToInt64(Scalar(_connection, "SELECT count(*) FROM mq_acks"), CultureInfo.InvariantCulture);
            _deliveryRows = Convert.ToInt64(Scalar(_connection, "SELECT count(*) FROM mq_deliveries"), CultureInfo.InvariantCulture);
        }

        ForEachRow("SELECT queue, id, sequence, until FROM mq_dedup", reader =>
            QueueNamed(reader.GetString(0)).Ids.Add(new StoredId
            {
                MessageId = new Guid((byte[])reader.GetValue(1)),
                Sequence = reader.GetInt64(2),
                Until = Time(reader.GetInt64(3)),
            }));

        var loaded = new List<StoredQueueState>(queues.Count);
        foreach (LoadedQueue queue in queues.Values)
        {
            loaded.Add(new StoredQueueState
            {
                Name = queue.Name,
                LastSequence = queue.LastSequence,
                Messages = queue.Messages,
                MessageCount = queue.MessageCount,
                Scheduled = queue.Scheduled,
                Subscriptions = [.. queue.Subscriptions.Values.Select(s => new StoredSubscriptionState
                {
                    Subscription = s.Subscription,
                    Cursor = s.Cursor,
                    Acked = s.Acked,
                    Deliveries = s.Deliveries,
                })],
                DeduplicationIds = queue.Ids,
            });
        }

        return loaded;
    }

    private void ForEachRow(string sql, Action<SqliteDataReader> row) => ForEachRow(sql, static _ => { }, row);

    private void ForEachRow(string sql, Action<SqliteCommand> bind, Action<SqliteDataReader> row)
    {
        using SqliteCommand command = _connection.CreateCommand();
        command.CommandText = sql;
        bind(command);
        using SqliteDataReader reader = command.ExecuteReader();
        while (reader.Read())
        {
            row(reader);
        }
    }

    private static Dictionary<string, string> ReadHeaders(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal)
            ? new Dictionary<string, string>(StringComparer.Ordinal)
            : JsonSerializer.Deserialize(reader.GetString(ordinal), SqliteJsonContext.Default.DictionaryStringString) ?? new Dictionary<string, string>(StringComparer.Ordinal);

    private static DateTimeOffset Time(long ticks) => new(ticks, TimeSpan.Zero);

    private static DateTimeOffset? OptionalTime(SqliteDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : Time(reader.GetInt64(ordinal));
}
