using System.Globalization;
using System.Runtime.InteropServices;
using MessageQueue.Persistence;
using Microsoft.Data.Sqlite;

namespace MessageQueue.Sqlite;

/// <summary>
/// An <see cref="IMessageStore"/> in one SQLite file: messages, settlements, durable subscriptions, dead
/// letters and deduplication ids of durable queues survive a crash of the process.
/// </summary>
/// <remarks>
/// <para>The file is opened in WAL mode and locked exclusively when the store is created: a second store
/// (in this process or another) on the same file fails at once with <see cref="MessageStoreException"/>,
/// and the file is not touched. The lock is released when the store is disposed (the broker disposes its
/// store) or the process ends.</para>
/// <para>Each <see cref="Write"/> is one transaction. A batch that asks for <see cref="StoreBatch.Flush"/>
/// commits with <c>synchronous=FULL</c> (the commit is on the disk when it returns); any other with
/// <c>synchronous=NORMAL</c> (the commit survives the process dying, not the machine losing power).</para>
/// <para>Payloads are stored as the bytes the queue's serializer made; the file holds no type names.</para>
/// </remarks>
public sealed partial class SqliteMessageStore : IPagedMessageStore
{
    private const string Format = "MessageQueue.Sqlite";
    private const int SchemaVersion = 1;

    private static readonly string[] Schema =
    [
        "CREATE TABLE IF NOT EXISTS mq_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS mq_queues(name TEXT PRIMARY KEY, last_sequence INTEGER NOT NULL) WITHOUT ROWID",
        // The tables that hold payloads keep their rowid: a rowid table stores a row of up to about 4 KB in its leaf page,
        // where a WITHOUT ROWID table (a clustered index) keeps only about 1 KB of a row there and spills the rest into an
        // overflow page of its own, which made a 1.4 KB message cost 4.7 KB of file.
        "CREATE TABLE IF NOT EXISTS mq_messages(queue TEXT NOT NULL, sequence INTEGER NOT NULL, id BLOB NOT NULL, event TEXT NOT NULL, payload BLOB NOT NULL, headers TEXT, timestamp INTEGER NOT NULL, expires_at INTEGER, PRIMARY KEY(queue, sequence))",
        "CREATE TABLE IF NOT EXISTS mq_scheduled(queue TEXT NOT NULL, id BLOB NOT NULL, ordinal INTEGER NOT NULL, event TEXT NOT NULL, payload BLOB NOT NULL, headers TEXT, timestamp INTEGER NOT NULL, expires_at INTEGER, due_at INTEGER NOT NULL, dedup_until INTEGER, PRIMARY KEY(queue, id))",
        "CREATE TABLE IF NOT EXISTS mq_subscriptions(queue TEXT NOT NULL, name TEXT NOT NULL, filters TEXT NOT NULL, start_after INTEGER NOT NULL, cursor INTEGER NOT NULL, PRIMARY KEY(queue, name)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS mq_acks(queue TEXT NOT NULL, sequence INTEGER NOT NULL, subscription TEXT NOT NULL, PRIMARY KEY(queue, sequence, subscription)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS mq_deliveries(queue TEXT NOT NULL, sequence INTEGER NOT NULL, subscription TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY(queue, sequence, subscription)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS mq_dedup(queue TEXT NOT NULL, id BLOB NOT NULL, sequence INTEGER NOT NULL, until INTEGER NOT NULL, PRIMARY KEY(queue, id)) WITHOUT ROWID",
    ];

    private readonly SqliteConnection _connection;
    private readonly Commands _commands;
    private readonly Dictionary<string, long> _lastSequences = new(StringComparer.Ordinal);
    private bool _synchronousFull;
    private long _scheduledOrdinal;

    // Rows in mq_acks and mq_deliveries. While a table is empty (the usual case: one subscription, or acks in
    // order), removing a message skips the statement that would clean it.
    private long _ackRows;
    private long _deliveryRows;
    private bool _disposed;

    /// <summary>Opens (or creates) the store file at <paramref name="path"/> and locks it.</summary>
    /// <param name="path">The file's path.</param>
    /// <exception cref="MessageStoreException">The file is in use by another store, is not a MessageQueue store, or cannot be opened for writing.</exception>
    public SqliteMessageStore(string path)
        : this(new SqliteStoreOptions { Path = path })
    {
    }

    /// <summary>Opens (or creates) the store file and locks it.</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="ArgumentException">The options are not valid.</exception>
    /// <exception cref="MessageStoreException">The file is in use by another store, is not a MessageQueue store, or cannot be opened for writing.</exception>
    public SqliteMessageStore(SqliteStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(nameof(options));
        SqliteStoreOptions copy = options.Clone();
        Path = System.IO.Path.GetFullPath(copy.Path);
        _connection = Open(Path, copy.MaxFileSize);
        try
        {
            _commands = new Commands(_connection);
        }
        catch
        {
            _connection.Dispose();
            throw;
        }
    }

    /// <summary>Gets the full path of the store file.</summary>
    public string Path { get; }

    private static SqliteConnection Open(string path, long? maxFileSize)
    {
        ProbeWritable(path);
        // Pooling off: the lock must go with this store, not stay with a pooled connection.
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 1,
        };
        var connection = new SqliteConnection(builder.ConnectionString);
        try
        {
            connection.Open();
            Execute(connection, "PRAGMA locking_mode=EXCLUSIVE");

            // Taking a write lock now makes a second store on this file fail here, not at its first write.
            Execute(connection, "BEGIN IMMEDIATE");
            Execute(connection, "COMMIT");

            // Whose file is it? Asked before anything is changed, so a file this store refuses is left exactly as it was.
            bool isNew = CheckOwnership(connection, path);
            string mode = Convert.ToString(Scalar(connection, "PRAGMA journal_mode=WAL"), CultureInfo.InvariantCulture) ?? string.Empty;
            if (!mode.Equals("wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new MessageStoreException($"Store file '{path}' could not be switched to WAL mode (it reports '{mode}'); check that its directory is writable and not on a network file system.");
            }

            Execute(connection, "PRAGMA synchronous=NORMAL");
            if (maxFileSize is { } size)
            {
                long pageSize = Convert.ToInt64(Scalar(connection, "PRAGMA page_size"), CultureInfo.InvariantCulture);
                Execute(connection, string.Create(CultureInfo.InvariantCulture, $"PRAGMA max_page_count={Math.Max(1, size / pageSize)}"));
            }

            if (isNew)
            {
                CreateSchema(connection);
            }

            return connection;
        }
        catch (SqliteException exception)
        {
            connection.Dispose();
            throw Translate(exception, path, "open");
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// SQLite opens a file it cannot write read-only without saying so, and fails later with an I/O error;
    /// opening it for writing first turns that into a clear exception.
    /// </summary>
    private static void ProbeWritable(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (UnauthorizedAccessException exception)
        {
            throw new MessageStoreException($"Store file '{path}' is read-only, so nothing can be stored in it. Make the file and its directory writable, or use another path.", exception);
        }
    }

    /// <summary>Refuses a file that is another application's database or a store of another format; true when the file is empty and the schema is still to be created.</summary>
    private static bool CheckOwnership(SqliteConnection connection, string path)
    {
        long tables = Convert.ToInt64(Scalar(connection, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"), CultureInfo.InvariantCulture);
        bool ours = Convert.ToInt64(Scalar(connection, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'mq_meta'"), CultureInfo.InvariantCulture) == 1;
        if (tables > 0 && !ours)
        {
            throw new MessageStoreException($"'{path}' is a SQLite database but not a MessageQueue store (it has other tables and no mq_meta). Give the store a file of its own.");
        }

        if (ours)
        {
            string? format = Scalar(connection, "SELECT value FROM mq_meta WHERE key = 'format'") as string;
            string? version = Scalar(connection, "SELECT value FROM mq_meta WHERE key = 'schema'") as string;
            if (format != Format || version != SchemaVersion.ToString(CultureInfo.InvariantCulture))
            {
                throw new MessageStoreException($"'{path}' is a store of format '{format}' version '{version}'; this version of MessageQueue.Sqlite reads '{Format}' version {SchemaVersion}. Open it with the version that wrote it.");
            }

            return false;
        }

        return true;
    }

    private static void CreateSchema(SqliteConnection connection)
    {
        using SqliteTransaction transaction = connection.BeginTransaction();
        foreach (string statement in Schema)
        {
            Execute(connection, statement, transaction);
        }

        Execute(connection, $"INSERT INTO mq_meta(key, value) VALUES ('format', '{Format}'), ('schema', '{SchemaVersion}')", transaction);
        transaction.Commit();
    }

    private static MessageStoreException Translate(SqliteException exception, string path, string doing) => exception.SqliteErrorCode switch
    {
        5 or 6 => new MessageStoreException($"Store file '{path}' is in use by another broker (it is locked). Only one broker may use a store file at a time; stop the other one or give this one its own file.", exception),
        8 => new MessageStoreException($"Store file '{path}' is read-only, so nothing can be stored in it. Make the file and its directory writable, or use another path.", exception),
        13 => new MessageStoreException($"Store file '{path}' is full (the disk, or SqliteStoreOptions.MaxFileSize), so the last {doing} was not stored. Free space or raise the limit, then start the broker again.", exception),
        11 or 26 => new MessageStoreException($"'{path}' is not a SQLite database, or it is corrupt, so it cannot be a MessageQueue store. Use another path, or restore the file from a backup.", exception),
        14 => new MessageStoreException($"Store file '{path}' cannot be opened: check that its directory exists and is writable.", exception),
        10 => new MessageStoreException($"Store file '{path}' could not be read or written (an I/O error): check that the file and its directory are writable (SQLite keeps its WAL files next to it) and that the disk is healthy.", exception),
        _ => new MessageStoreException($"Store file '{path}' failed to {doing}: {exception.Message}", exception),
    };

    // ---------------------------------------------------------------- write

    /// <inheritdoc/>
    public void Write(StoreBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectDisposedException.ThrowIf(_disposed, this);
        long ackRows = _ackRows, deliveryRows = _deliveryRows, scheduledOrdinal = _scheduledOrdinal;
        var sequences = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            if (batch.Flush != _synchronousFull)
            {
                Execute(_connection, batch.Flush ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
                _synchronousFull = batch.Flush;
            }

            foreach (StoreOperation operation in batch.Operations)
            {
                if (string.IsNullOrEmpty(operation.Queue) || !Enum.IsDefined(operation.Kind))
                {
                    throw new MessageStoreException($"A store operation has no queue or an unknown kind ({operation.Kind}): it is default(StoreOperation), not one made by its static methods. Nothing of the batch was stored.");
                }
            }

            using SqliteTransaction transaction = _connection.BeginTransaction();

            // Removals of consecutive sequences of one queue (a consumer acking in order) run as one statement. Appends,
            // cursors and taken sequences may pass a pending run: they touch no message in it. Anything else that could
            // (an ack, a delivery count) waits until the run is removed, as the operations' order says.
            string? runQueue = null;
            long runFirst = 0, runLast = 0;
            foreach (StoreOperation operation in batch.Operations)
            {
                if (operation.Kind == StoreOperationKind.Remove)
                {
                    if (runQueue is not null && operation.Sequence == runLast + 1 && string.Equals(operation.Queue, runQueue, StringComparison.Ordinal))
                    {
                        runLast = operation.Sequence;
                        continue;
                    }

                    RemoveRun(runQueue, runFirst, runLast, ref ackRows, ref deliveryRows);
                    (runQueue, runFirst, runLast) = (operation.Queue, operation.Sequence, operation.Sequence);
                    continue;
                }

                if (operation.Kind is not (StoreOperationKind.Append or StoreOperationKind.SetCursor or StoreOperationKind.SequenceTaken))
                {
                    RemoveRun(runQueue, runFirst, runLast, ref ackRows, ref deliveryRows);
                    runQueue = null;
                }

                Apply(operation, sequences, ref ackRows, ref deliveryRows, ref scheduledOrdinal);
            }

            RemoveRun(runQueue, runFirst, runLast, ref ackRows, ref deliveryRows);

            foreach ((string queue, long sequence) in sequences)
            {
                _commands.SetLastSequence(queue, sequence);
            }

            transaction.Commit();
        }
        catch (SqliteException exception)
        {
            throw Translate(exception, Path, "commit");
        }

        // Only after the commit: a failed batch leaves the counts as they were, like the file.
        _ackRows = ackRows;
        _deliveryRows = deliveryRows;
        _scheduledOrdinal = scheduledOrdinal;
        foreach ((string queue, long sequence) in sequences)
        {
            _lastSequences[queue] = sequence;
        }
    }

    /// <summary>Forgets messages <paramref name="first"/> to <paramref name="last"/> of <paramref name="queue"/> with their acks and delivery counts (nothing when <paramref name="queue"/> is null).</summary>
    private void RemoveRun(string? queue, long first, long last, ref long ackRows, ref long deliveryRows)
    {
        if (queue is null)
        {
            return;
        }

        _commands.DeleteMessages(queue, first, last);
        if (ackRows > 0)
        {
            ackRows -= _commands.DeleteAckRange(queue, first, last);
        }

        if (deliveryRows > 0)
        {
            deliveryRows -= _commands.DeleteDeliveryRange(queue, first, last);
        }
    }

    private void Apply(StoreOperation operation, Dictionary<string, long> sequences, ref long ackRows, ref long deliveryRows, ref long scheduledOrdinal)
    {
        switch (operation.Kind)
        {
            case StoreOperationKind.Append:
                StoredMessage message = operation.Message!;
                _commands.InsertMessage(message);
                if (message.DeduplicateUntil is { } until)
                {
                    _commands.RememberId(message.Queue, message.Id, message.Sequence, until);
                }

                if (message.DueAt is not null)
                {
                    _commands.DeleteScheduled(message.Queue, message.Id);
                }

                NoteSequence(sequences, message.Queue, message.Sequence);
                break;
            case StoreOperationKind.Ack:
                ackRows += _commands.InsertAck(operation.Queue, operation.Sequence, operation.Subscription!);
                break;
            case StoreOperationKind.Remove:
                RemoveRun(operation.Queue, operation.Sequence, operation.Sequence, ref ackRows, ref deliveryRows);
                break;
            case StoreOperationKind.SetDeliveries:
                deliveryRows += _commands.SetDeliveries(operation.Queue, operation.Sequence, operation.Subscription!, operation.Deliveries);
                break;
            case StoreOperationKind.SetCursor:
                _commands.SetCursor(operation.Queue, operation.Subscription!, operation.Sequence);
                break;
            case StoreOperationKind.SaveSubscription:
                _commands.SaveSubscription(operation.DurableSubscription!);
                break;
            case StoreOperationKind.DeleteSubscription:
                ackRows -= _commands.DeleteSubscription(operation.Queue, operation.Subscription!, out int deliveries);
                deliveryRows -= deliveries;
                break;
            case StoreOperationKind.Schedule:
                _commands.InsertScheduled(operation.Message!, ++scheduledOrdinal);
                break;
            case StoreOperationKind.Unschedule:
                _commands.DeleteScheduled(operation.Queue, operation.MessageId);
                break;
            case StoreOperationKind.ForgetIds:
                _commands.ForgetIds(operation.Queue, operation.Time);
                break;
            case StoreOperationKind.SequenceTaken:
                NoteSequence(sequences, operation.Queue, operation.Sequence);
                break;
            default:
                throw new MessageStoreException($"Unknown store operation kind {(int)operation.Kind}; nothing of the batch was stored.");
        }
    }

    /// <summary>Raises the queue's last sequence, as this batch will store it, to <paramref name="sequence"/> if it is higher.</summary>
    private void NoteSequence(Dictionary<string, long> sequences, string queue, long sequence)
    {
        long last = sequences.TryGetValue(queue, out long inBatch) ? inBatch : _lastSequences.GetValueOrDefault(queue);
        if (sequence > last)
        {
            sequences[queue] = sequence;
        }
    }

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    internal static byte[] Bytes(ReadOnlyMemory<byte> memory) =>
        MemoryMarshal.TryGetArray(memory, out ArraySegment<byte> segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : memory.ToArray();

    /// <summary>Closes the file and releases its lock.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _commands.Dispose();
        _connection.Dispose();
    }
}
