using MessageQueue.ContractTests;
using MessageQueue.Persistence;

namespace MessageQueue.Tests.Persistence;

/// <summary>The store contract against <see cref="InMemoryMessageStore"/>; a restart keeps the same instance.</summary>
public sealed class InMemoryMessageStoreContractTests : MessageStoreContractTests
{
    protected override IMessageStore CreateStore() => new InMemoryMessageStore();

    protected override IMessageStore Reopen(IMessageStore store) => store;
}
