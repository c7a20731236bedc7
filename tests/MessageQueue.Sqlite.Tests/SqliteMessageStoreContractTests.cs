using MessageQueue.ContractTests;
using MessageQueue.Persistence;

namespace MessageQueue.Sqlite.Tests;

/// <summary>The store contract against <see cref="SqliteMessageStore"/>; a restart closes the file and opens it again.</summary>
public sealed class SqliteMessageStoreContractTests : MessageStoreContractTests, IDisposable
{
    private readonly TempStoreFile _file = new();

    protected override IMessageStore CreateStore() => new SqliteMessageStore(_file.Path);

    protected override IMessageStore Reopen(IMessageStore store)
    {
        store.Dispose();
        return new SqliteMessageStore(_file.Path);
    }

    void IDisposable.Dispose()
    {
        Dispose();
        _file.Dispose();
    }
}
