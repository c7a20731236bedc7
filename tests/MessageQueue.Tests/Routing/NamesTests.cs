using FluentAssertions;
using Xunit;

namespace MessageQueue.Tests.Routing;

/// <summary>The grammar of names (documented on <see cref="Names"/>). The catalogue of refusals is in BadInputCatalogueTests.</summary>
public sealed class NamesTests
{
    [Theory]
    [InlineData("database")]
    [InlineData("orders-v2")]
    [InlineData("ep42.results")]
    [InlineData("A_b-9.c")]
    [InlineData("7days")]
    public void ValidateQueueName_AcceptedNames_DoNotThrow(string name)
    {
        FluentActions.Invoking(() => Names.ValidateQueueName(name, "queue", allowDeadLetter: false)).Should().NotThrow();
    }

    [Fact]
    public void ValidateQueueName_LongestAllowed_IsTwoHundredCharacters()
    {
        FluentActions.Invoking(() => Names.ValidateQueueName(new string('a', 200), "queue", allowDeadLetter: false)).Should().NotThrow();
        FluentActions.Invoking(() => Names.ValidateQueueName(new string('a', 201), "queue", allowDeadLetter: false)).Should().Throw<ArgumentException>();
    }

    [Fact]
    public void ValidateQueueName_DeadLetterName_AcceptedOnlyWhereAllowed()
    {
        FluentActions.Invoking(() => Names.ValidateQueueName("orders.$dlq", "queue", allowDeadLetter: true)).Should().NotThrow();
        FluentActions.Invoking(() => Names.ValidateQueueName("orders.$dlq", "queue", allowDeadLetter: false)).Should().Throw<ArgumentException>().WithMessage("*reserved*");
        FluentActions.Invoking(() => Names.ValidateQueueName("bad name.$dlq", "queue", allowDeadLetter: true)).Should().Throw<ArgumentException>();
    }

    [Theory]
    [InlineData("add")]
    [InlineData("ep42.results")]
    [InlineData("user@example.com")]
    [InlineData("ünïcode.wörds")]
    [InlineData("a.b.c.d.e.f")]
    public void ValidateEvent_AcceptedNames_DoNotThrow(string eventName)
    {
        FluentActions.Invoking(() => Names.ValidateEvent(eventName, nameof(eventName))).Should().NotThrow();
    }

    [Theory]
    [InlineData("#")]
    [InlineData("*.results")]
    [InlineData("orders.#")]
    [InlineData("a.*.#.b")]
    public void ValidateFilter_Wildcards_AreAcceptedAsWholeWords(string filter)
    {
        FluentActions.Invoking(() => Names.ValidateFilter(filter, nameof(filter))).Should().NotThrow();
    }
}
