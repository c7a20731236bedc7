using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Testing.Tests.Api;

/// <summary>The public surface of MessageQueue.Testing is tracked in src/MessageQueue.Testing/PublicAPI.txt.</summary>
public sealed class PublicApiTests
{
    [Fact]
    public void PublicApi_OfTheTestingAssembly_MatchesPublicApiTxt() =>
        PublicApi.ShouldMatchFile(typeof(BrokerTestHarness).Assembly, Path.Combine(PublicApi.RepositoryRoot(), "src", "MessageQueue.Testing", "PublicAPI.txt"));
}
