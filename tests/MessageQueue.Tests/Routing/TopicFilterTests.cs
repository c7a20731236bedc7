using FluentAssertions;
using Xunit;

namespace MessageQueue.Tests.Routing;

/// <summary>Filter matching follows AMQP topic-exchange rules: '*' is exactly one word, '#' is zero or more.</summary>
public sealed class TopicFilterTests
{
    [Theory]
    [InlineData("delete", "delete", true)]
    [InlineData("delete", "deleted", false)]
    [InlineData("delete", "delete.row", false)]
    [InlineData("*", "delete", true)]
    [InlineData("*", "delete.row", false)]
    [InlineData("*.results", "ep42.results", true)]
    [InlineData("*.results", "results", false)]
    [InlineData("*.results", "a.ep42.results", false)]
    [InlineData("#", "a", true)]
    [InlineData("#", "a.b.c.d", true)]
    [InlineData("#.results", "results", true)]
    [InlineData("#.results", "a.b.results", true)]
    [InlineData("#.results", "a.b.results.x", false)]
    [InlineData("orders.#", "orders", true)]
    [InlineData("orders.#", "orders.eu.created", true)]
    [InlineData("orders.#", "order.eu", false)]
    [InlineData("a.#.z", "a.z", true)]
    [InlineData("a.#.z", "a.b.c.z", true)]
    [InlineData("a.#.z", "a.b.c", false)]
    [InlineData("#.#", "a", true)]
    [InlineData("#.*", "a", true)]
    [InlineData("#.*", "a.b", true)]
    [InlineData("*.#", "a", true)]
    [InlineData("*.*.#.*", "a.b", false)]
    [InlineData("*.*.#.*", "a.b.c", true)]
    [InlineData("#.b.#", "a.b.c", true)]
    [InlineData("#.b.#", "b", true)]
    [InlineData("#.b.#", "a.c", false)]
    [InlineData("Delete", "delete", false)]
    public void Matches_FilterAndEvent_FollowsAmqpTopicRules(string filter, string eventName, bool expected)
    {
        TopicFilter.Parse(filter).Matches(eventName).Should().Be(expected, $"'{filter}' against '{eventName}'");
    }

    [Fact]
    public void Matches_ManyHashesAgainstALongEvent_StaysFast()
    {
        // A naive backtracking matcher takes exponential time here; dynamic programming does not.
        string filter = string.Join('.', Enumerable.Repeat("#.x", 40)) + ".y";
        string eventName = string.Join('.', Enumerable.Repeat("x", 120));

        TopicFilter.Parse(filter).Matches(eventName).Should().BeFalse();
        TopicFilter.Parse("#.y").Matches(eventName + ".y").Should().BeTrue();
    }
}
