using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.DependencyInjection.Tests.Api;

/// <summary>The public surface of MessageQueue.DependencyInjection is tracked in src/MessageQueue.DependencyInjection/PublicAPI.txt.</summary>
public sealed class PublicApiTests
{
    [Fact]
    public void PublicApi_OfTheDependencyInjectionAssembly_MatchesPublicApiTxt() =>
        PublicApi.ShouldMatchFile(typeof(MessageBrokerBuilder).Assembly, Path.Combine(PublicApi.RepositoryRoot(), "src", "MessageQueue.DependencyInjection", "PublicAPI.txt"));
}
