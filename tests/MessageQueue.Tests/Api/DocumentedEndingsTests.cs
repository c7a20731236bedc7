using System.Threading.Channels;
using System.Xml.Linq;
using FluentAssertions;
using MessageQueue.ContractTests;
using Xunit;

namespace MessageQueue.Tests.Api;

/// <summary>
/// How a subscription ends, as the XML documentation shipped with the package tells it and as the broker does it: the
/// owner's own dispose completes <see cref="Subscription.Completion"/> and ends reads like a completed channel; a dispose
/// of the broker faults the completion with <see cref="SubscriptionClosedException"/>, never <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed class DocumentedEndingsTests
{
    private static readonly Lazy<XDocument> Documentation = new(() =>
        XDocument.Load(Path.ChangeExtension(typeof(Broker).Assembly.Location, ".xml")));

    [Fact]
    public async Task BrokerDisposeAsync_FaultsCompletionWithSubscriptionClosed_AsItsDocumentationSays()
    {
        var broker = new Broker(new BrokerOptions { ShutdownTimeout = TimeSpan.Zero });
        Subscription<TestEvent> subscription = await broker.SubscribeAsync<TestEvent>("jobs", "#");

        await broker.DisposeAsync();

        (await FluentActions.Awaiting(() => subscription.Completion).Should().ThrowAsync<SubscriptionClosedException>())
            .Which.Reason.Should().Be(SubscriptionCloseReason.BrokerDisposed);
        await FluentActions.Awaiting(async () => await subscription.ReadAsync()).Should().ThrowAsync<ChannelClosedException>();
        string summary = Summary("M:MessageQueue.Broker.DisposeAsync");
        summary.Should().Contain("faults with <see cref=\"T:MessageQueue.SubscriptionClosedException\" />", "the completion faults with what the code throws");
        summary.Should().NotContain("faults with <see cref=\"T:System.ObjectDisposedException\" />");
    }

    [Fact]
    public async Task SubscriptionDisposeAsync_CompletesAndEndsReadsLikeACompletedChannel_AsItsDocumentationSays()
    {
        await using var broker = new Broker(new BrokerOptions { ShutdownTimeout = TimeSpan.Zero });
        Subscription<TestEvent> subscription = await broker.SubscribeAsync<TestEvent>("jobs", "#");

        await subscription.DisposeAsync();

        subscription.Completion.IsCompletedSuccessfully.Should().BeTrue();
        subscription.TryRead(out _).Should().BeFalse();
        (await subscription.WaitToReadAsync()).Should().BeFalse();
        await FluentActions.Awaiting(async () => await subscription.ReadAsync()).Should().ThrowAsync<ChannelClosedException>();
        string summary = Summary("M:MessageQueue.Subscription.DisposeAsync");
        summary.Should().Contain("<see cref=\"T:System.Threading.Channels.ChannelClosedException\" />", "the documentation names what a later read throws");
        summary.Should().Contain("completes successfully");
    }

    /// <summary>The summary of one member in the XML documentation file beside the assembly, as written there.</summary>
    private static string Summary(string member)
    {
        XElement? element = Documentation.Value.Descendants("member").SingleOrDefault(m => (string?)m.Attribute("name") == member);
        element.Should().NotBeNull($"{member} is documented");
        return string.Join(' ', element!.Element("summary")!.Nodes().Select(n => n.ToString()))
            .Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries)
            .Aggregate((a, b) => a + " " + b);
    }
}
