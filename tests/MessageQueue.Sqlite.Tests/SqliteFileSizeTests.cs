using FluentAssertions;
using MessageQueue.Persistence;
using Xunit;

namespace MessageQueue.Sqlite.Tests;

/// <summary>What a retained message costs on disk: at most 1.5 times its serialized payload plus 100 bytes.</summary>
public sealed class SqliteFileSizeTests : IDisposable
{
    private readonly TempStoreFile _file = new();

    public void Dispose() => _file.Dispose();

    [Theory]
    [InlineData(100)]
    [InlineData(1_400)]
    [InlineData(3_000)]
    public void RetainedMessages_TakeAtMostOneAndAHalfTimesTheirPayloadPlus100BytesOfFile(int payloadBytes)
    {
        const int Count = 2_000;
        using (var store = new SqliteMessageStore(_file.Path))
        {
            for (int batch = 0; batch < Count / 100; batch++)
            {
                store.Write(new StoreBatch
                {
                    Operations = [.. Enumerable.Range((batch * 100) + 1, 100).Select(sequence => StoreOperation.Append(new StoredMessage
                    {
                        Queue = "orders",
                        Sequence = sequence,
                        Id = Guid.NewGuid(),
                        Event = "order.created",
                        Payload = new byte[payloadBytes],
                        Timestamp = DateTimeOffset.UnixEpoch.AddSeconds(sequence),
                    }))],
                    Flush = false,
                });
            }
        }

        // Closed: the write-ahead log is checkpointed into the file and removed.
        long bytes = new[] { _file.Path, _file.Path + "-wal", _file.Path + "-shm" }.Where(File.Exists).Sum(path => new FileInfo(path).Length);
        ((double)bytes / Count).Should().BeLessThanOrEqualTo((1.5 * payloadBytes) + 100, $"a message with a {payloadBytes}-byte payload must not cost more than that (the file is {bytes} bytes for {Count} messages)");
    }
}
