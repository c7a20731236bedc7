using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Sqlite.Tests.Api;

/// <summary>The public surface of MessageQueue.Sqlite is tracked in src/MessageQueue.Sqlite/PublicAPI.txt.</summary>
public sealed class PublicApiTests
{
    [Fact]
    public void PublicApi_OfTheSqliteAssembly_MatchesPublicApiTxt() =>
        PublicApi.ShouldMatchFile(typeof(SqliteMessageStore).Assembly, Path.Combine(PublicApi.RepositoryRoot(), "src", "MessageQueue.Sqlite", "PublicAPI.txt"));
}
