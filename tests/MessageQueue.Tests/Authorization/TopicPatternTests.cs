using FluentAssertions;
using Xunit;

namespace MessageQueue.Tests.Authorization;

/// <summary>The pattern relations subscriptions are authorized by.</summary>
public sealed class TopicPatternTests
{
    [Theory]
    [InlineData("#", "#", true)]
    [InlineData("#", "a.*.b", true)]
    [InlineData("*.results", "ep42.results", true)]
    [InlineData("*.results", "*.results", true)]
    [InlineData("*.results", "#.results", false)]
    [InlineData("*.results", "results", false)]
    [InlineData("a.#", "a", true)]
    [InlineData("a.#", "a.b.c", true)]
    [InlineData("a.#", "a.#", true)]
    [InlineData("a.*", "a.#", false)]
    [InlineData("a.b", "a.*", false)]
    [InlineData("#.x", "a.*.x", true)]
    public void Covers(string pattern, string filter, bool covers) => TopicPatterns.Covers(pattern, filter).Should().Be(covers);

    [Theory]
    [InlineData("admin.*", "#", true)]
    [InlineData("admin.*", "order.*", false)]
    [InlineData("admin.*", "*.delete", true)]
    [InlineData("admin.*", "admin", false)]
    [InlineData("a.#", "#.b", true)]
    [InlineData("a.*.c", "a.b.*", true)]
    [InlineData("a.*.c", "a.b", false)]
    [InlineData("#", "x", true)]
    public void Overlap(string first, string second, bool overlap)
    {
        TopicPatterns.Overlap(first, second).Should().Be(overlap);
        TopicPatterns.Overlap(second, first).Should().Be(overlap, "overlap is symmetric");
    }
}
