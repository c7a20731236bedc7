using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace MessageQueue.Sqlite;

/// <summary>
/// One prepared statement on the store's connection, bound and run through SQLitePCL without allocating. Parameters
/// are given by their position in the list the statement was made with; a failure throws the
/// <see cref="SqliteException"/> Microsoft.Data.Sqlite would have thrown, with SQLite's result code.
/// </summary>
internal sealed class Statement : IDisposable
{
    private readonly sqlite3 _database;
    private readonly sqlite3_stmt _statement;
    private readonly int[] _indexes;

    /// <param name="database">The connection's handle.</param>
    /// <param name="sql">One SQL statement with named parameters.</param>
    /// <param name="parameters">The names of its parameters (<c>$q</c>, …), in the order the binding methods refer to them.</param>
    public Statement(sqlite3 database, string sql, string[] parameters)
    {
        _database = database;
        Check(raw.sqlite3_prepare_v2(database, sql, out _statement));
        _indexes = Array.ConvertAll(parameters, name => raw.sqlite3_bind_parameter_index(_statement, name));
        if (Array.IndexOf(_indexes, 0) is int missing and >= 0)
        {
            throw new InvalidOperationException($"Parameter {parameters[missing]} is not in the statement: {sql}");
        }
    }

    public Statement Text(int parameter, string? value)
    {
        Check(value is null ? raw.sqlite3_bind_null(_statement, _indexes[parameter]) : raw.sqlite3_bind_text(_statement, _indexes[parameter], value));
        return this;
    }

    public Statement Int(int parameter, long value)
    {
        Check(raw.sqlite3_bind_int64(_statement, _indexes[parameter], value));
        return this;
    }

    public Statement Int(int parameter, long? value)
    {
        Check(value is { } number ? raw.sqlite3_bind_int64(_statement, _indexes[parameter], number) : raw.sqlite3_bind_null(_statement, _indexes[parameter]));
        return this;
    }

    public Statement Blob(int parameter, ReadOnlySpan<byte> value)
    {
        Check(raw.sqlite3_bind_blob(_statement, _indexes[parameter], value));
        return this;
    }

    /// <summary>Binds an id as its 16 bytes (<see cref="Guid.ToByteArray()"/>'s order), from the stack.</summary>
    public Statement Blob(int parameter, Guid value)
    {
        Span<byte> bytes = stackalloc byte[16];
        value.TryWriteBytes(bytes);
        return Blob(parameter, bytes);
    }

    /// <summary>Runs the statement to its end and makes it ready for the next run.</summary>
    /// <returns>The rows it inserted, updated or deleted.</returns>
    public int Execute()
    {
        int result = raw.sqlite3_step(_statement);
        raw.sqlite3_reset(_statement);
        raw.sqlite3_clear_bindings(_statement);
        if (result != raw.SQLITE_DONE && result != raw.SQLITE_ROW)
        {
            SqliteException.ThrowExceptionForRC(result, _database);
        }

        return raw.sqlite3_changes(_database);
    }

    private void Check(int result)
    {
        if (result != raw.SQLITE_OK)
        {
            SqliteException.ThrowExceptionForRC(result, _database);
        }
    }

    public void Dispose() => _statement.Dispose();
}
