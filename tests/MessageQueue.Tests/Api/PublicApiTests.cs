using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests.Api;

/// <summary>The public surface of MessageQueue is tracked in src/MessageQueue/PublicAPI.txt.</summary>
public sealed class PublicApiTests
{
    [Fact]
    public void PublicApi_OfTheCoreAssembly_MatchesPublicApiTxt() =>
        PublicApi.ShouldMatchFile(typeof(Broker).Assembly, Path.Combine(PublicApi.RepositoryRoot(), "src", "MessageQueue", "PublicAPI.txt"));
}
