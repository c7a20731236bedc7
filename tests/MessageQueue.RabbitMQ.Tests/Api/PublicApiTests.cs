using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.RabbitMQ.Tests.Api;

/// <summary>The public surface of MessageQueue.RabbitMQ is tracked in src/MessageQueue.RabbitMQ/PublicAPI.txt.</summary>
public sealed class PublicApiTests
{
    [Fact]
    public void PublicApi_OfTheRabbitMqAssembly_MatchesPublicApiTxt() =>
        PublicApi.ShouldMatchFile(typeof(RabbitMqTransport).Assembly, Path.Combine(PublicApi.RepositoryRoot(), "src", "MessageQueue.RabbitMQ", "PublicAPI.txt"));
}
