using MessageQueue.Cli.Demo;

namespace MessageQueue.Cli.Tests.Demo;

public sealed class TopicMatcherTests
{
    [Theory]
    [InlineData("add", "add", true)]
    [InlineData("add", "update", false)]
    [InlineData("add", "add.more", false)]
    [InlineData("#", "add", true)]
    [InlineData("#", "a.b.c", true)]
    [InlineData("*", "add", true)]
    [InlineData("*", "a.b", false)]
    [InlineData("orders.*", "orders.created", true)]
    [InlineData("orders.*", "orders", false)]
    [InlineData("orders.*", "orders.a.b", false)]
    [InlineData("orders.#", "orders", true)]
    [InlineData("orders.#", "orders.a.b", true)]
    [InlineData("orders.#", "invoices.a", false)]
    [InlineData("*.results", "ep42.results", true)]
    [InlineData("*.results", "results", false)]
    [InlineData("a.#.z", "a.z", true)]
    [InlineData("a.#.z", "a.b.c.z", true)]
    [InlineData("a.#.z", "a.b.c", false)]
    [InlineData("#.#", "x", true)]
    [InlineData("Add", "add", false)]
    public void Matches_AmqpTopicRules_GivesExpectedAnswer(string filter, string eventName, bool expected)
    {
        TopicMatcher.Matches(filter, eventName).Should().Be(expected);
    }

    [Fact]
    public void MatchesAny_SeveralFilters_MatchesWhenOneDoes()
    {
        string[] filters = ["add", "update"];

        TopicMatcher.MatchesAny(filters, "update").Should().BeTrue();
        TopicMatcher.MatchesAny(filters, "delete").Should().BeFalse();
    }
}
