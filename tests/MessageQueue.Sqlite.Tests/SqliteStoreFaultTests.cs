using System.Text;
using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.Persistence;
using Microsoft.Data.Sqlite;
using Xunit;

namespace MessageQueue.Sqlite.Tests;

/// <summary>A store file that is in use, not a store, corrupt or full: each gives a clear exception, and nothing is reported as stored that was not.</summary>
[Trait("Guarantee", "7")]
public sealed class SqliteStoreFaultTests : IDisposable
{
    private readonly TempStoreFile _file = new();

    public void Dispose() => _file.Dispose();

    private static StoredMessage Message(long sequence, int payloadBytes = 3) => new()
    {
        Queue = "orders",
        Sequence = sequence,
        Id = Guid.NewGuid(),
        Event = "order.created",
        Payload = new byte[payloadBytes],
        Headers = new Dictionary<string, string>(),
        Timestamp = DateTimeOffset.UnixEpoch,
    };

    /// <summary>Runs SQL on the file as another application would, with a connection of its own.</summary>
    private void ExecuteSql(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={_file.Path};Pooling=False");
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static void Append(IMessageStore store, params long[] sequences) =>
        store.Write(new StoreBatch { Operations = [.. sequences.Select(s => StoreOperation.Append(Message(s)))], Flush = true });

    [Fact]
    public void SecondStoreOnTheSameFile_FailsAtOnceNamingTheCause_AndTheFirstKeepsWorking()
    {
        using (var first = new SqliteMessageStore(_file.Path))
        {
            Append(first, 1);

            FluentActions.Invoking(() => new SqliteMessageStore(_file.Path))
                .Should().Throw<MessageStoreException>().WithMessage("*is in use by another broker*Only one broker may use a store file at a time*");

            Append(first, 2);
        }

        using var reopened = new SqliteMessageStore(_file.Path);
        reopened.Load().Single().Messages.Select(m => m.Sequence).Should().Equal(1, 2);
    }

    [Fact]
    public void FileThatIsNotSqlite_IsRefusedAtOpen_AndLeftAsItWas()
    {
        byte[] text = Encoding.UTF8.GetBytes(new string('x', 4096));
        File.WriteAllBytes(_file.Path, text);

        FluentActions.Invoking(() => new SqliteMessageStore(_file.Path))
            .Should().Throw<MessageStoreException>().WithMessage("*is not a SQLite database, or it is corrupt*");

        File.ReadAllBytes(_file.Path).Should().Equal(text);
    }

    [Fact]
    public void SqliteDatabaseOfAnotherApplication_IsRefusedAtOpen()
    {
        ExecuteSql("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)");

        byte[] before = File.ReadAllBytes(_file.Path);

        FluentActions.Invoking(() => new SqliteMessageStore(_file.Path))
            .Should().Throw<MessageStoreException>().WithMessage("*is a SQLite database but not a MessageQueue store*");

        // Refused before anything was changed: the same bytes (still in its own journal mode), and no WAL files beside it.
        File.ReadAllBytes(_file.Path).Should().Equal(before, "a store that refuses a file leaves it as it was");
        File.Exists(_file.Path + "-wal").Should().BeFalse("the refused file was never switched to WAL mode");
        File.Exists(_file.Path + "-shm").Should().BeFalse();
    }

    [Fact]
    public void StoreOfAnotherFormatVersion_IsRefusedAtOpen_AndLeftAsItWas()
    {
        using (var store = new SqliteMessageStore(_file.Path))
        {
            Append(store, 1);
        }

        ExecuteSql("UPDATE mq_meta SET value = '999' WHERE key = 'schema'; PRAGMA wal_checkpoint(TRUNCATE);");

        byte[] before = File.ReadAllBytes(_file.Path);

        FluentActions.Invoking(() => new SqliteMessageStore(_file.Path))
            .Should().Throw<MessageStoreException>().WithMessage("*version '999'*Open it with the version that wrote it*");

        File.ReadAllBytes(_file.Path).Should().Equal(before, "a store that refuses a file leaves it as it was");
    }

    [Fact]
    public void CorruptStoreFile_IsRefusedAtOpenOrLoad_WithAClearException()
    {
        using (var store = new SqliteMessageStore(_file.Path))
        {
            Append(store, 1, 2, 3);
        }

        // Overwrite the header and the first pages: what a torn copy or a stray write leaves.
        using (FileStream stream = File.OpenWrite(_file.Path))
        {
            stream.Write(Enumerable.Repeat((byte)0xA5, 8192).ToArray());
        }

        FluentActions.Invoking(() =>
            {
                using var store = new SqliteMessageStore(_file.Path);
                store.Load();
            })
            .Should().Throw<MessageStoreException>().WithMessage("*not a SQLite database, or it is corrupt*");
    }

    [Fact]
    public void FullStore_RefusesTheBatchThatDoesNotFit_KeepsEveryEarlierOne_AndStaysUsable()
    {
        var committed = new List<long>();
        using (var store = new SqliteMessageStore(new SqliteStoreOptions { Path = _file.Path, MaxFileSize = 128 * 1024 }))
        {
            MessageStoreException? full = null;
            for (long sequence = 1; sequence <= 200 && full is null; sequence += 2)
            {
                try
                {
                    store.Write(new StoreBatch { Operations = [StoreOperation.Append(Message(sequence, 4000)), StoreOperation.Append(Message(sequence + 1, 4000))], Flush = true });
                    committed.AddRange([sequence, sequence + 1]);
                }
                catch (MessageStoreException exception)
                {
                    full = exception;
                }
            }

            full.Should().NotBeNull("128 KiB cannot hold 200 messages of 4 KB").And.Subject.As<MessageStoreException>().Message.Should().Contain("is full");
            committed.Should().NotBeEmpty();

            // Room again after removals: the store did not break.
            store.Write(new StoreBatch { Operations = [.. committed.Take(4).Select(s => StoreOperation.Remove("orders", s))], Flush = true });
            committed.RemoveRange(0, 4);
            store.Write(new StoreBatch { Operations = [StoreOperation.Append(Message(1000))], Flush = true });
            committed.Add(1000);
        }

        using var reopened = new SqliteMessageStore(_file.Path);
        reopened.Load().Single().Messages.Select(m => m.Sequence).Should().Equal(committed, "exactly the batches that were committed, none of the refused one");
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task ReadOnlyFile_IsRefusedAtOpen_AsReadOnly()
    {
        using (var store = new SqliteMessageStore(_file.Path))
        {
            Append(store, 1);
        }

        File.SetUnixFileMode(_file.Path, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        if (!Environment.IsPrivilegedProcess)
        {
            FluentActions.Invoking(() => new SqliteMessageStore(_file.Path))
                .Should().Throw<MessageStoreException>().WithMessage("*is read-only*");
            return;
        }

        // Root may write any file, so the open is tried by a process running as 'nobody', as a service
        // account would: the crash helper, which opens the store first thing.
        File.SetUnixFileMode(_file.Directory, (UnixFileMode)0b111_101_101);
        var start = new System.Diagnostics.ProcessStartInfo("setpriv") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "dotnet", Path.Combine(AppContext.BaseDirectory, "MessageQueue.Sqlite.CrashHelper.dll"), _file.Path, "1", "1", "drain" })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        string errors = await process.StandardError.ReadToEndAsync().OrHang("the helper's error output");
        await process.WaitForExitAsync().OrHang("the helper to exit");

        process.ExitCode.Should().NotBe(0);
        errors.Should().Contain("MessageStoreException").And.Contain("is read-only, so nothing can be stored in it");
    }

    [Fact]
    public void MissingDirectory_IsRefusedAtOpen_NamingThePath()
    {
        string path = Path.Combine(_file.Directory, "no-such-dir", "broker.db");

        FluentActions.Invoking(() => new SqliteMessageStore(path))
            .Should().Throw<MessageStoreException>().WithMessage($"*{path}*");
    }

    [Fact]
    public void Options_NotValid_AreRefusedWithEveryProblem()
    {
        FluentActions.Invoking(() => new SqliteMessageStore(new SqliteStoreOptions { Path = " ", MaxFileSize = 10 }))
            .Should().Throw<ArgumentException>().WithMessage("*Path is empty*MaxFileSize is 10 bytes*");
    }
}
