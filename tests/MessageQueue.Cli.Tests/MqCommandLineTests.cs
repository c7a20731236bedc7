using System.CommandLine;
using MessageQueue.Cli.Demo;

namespace MessageQueue.Cli.Tests;

/// <summary><c>mq</c> through the real command-line parser, as the process runs it.</summary>
public sealed class MqCommandLineTests
{
    [Fact]
    public async Task InvokeAsync_Demo_ReturnsZeroAndPrintsTheTable()
    {
        var console = new CapturedConsole();
        var error = new StringWriter();

        int exitCode = await MqCommandLine.InvokeAsync(["demo"], console.Console, new InvocationConfiguration { Error = error });

        exitCode.Should().Be(0);
        error.ToString().Should().BeEmpty();
        console.Output.Should().Contain("Published batch 1: 6 messages, #1..#6");
        console.Output.Should().MatchRegex(@"Subscriber\s+Filters\s+Matched\s+Received\s+Acked\s+Redelivered\s+Missing");
        console.Output.Should().MatchRegex(@"indexer\s+add, update\s+\d+");
        console.Output.Should().MatchRegex(@"janitor\s+delete\s+\d+");
        console.Output.Should().Contain(DemoReport.BalancedLine);
    }

    [Theory]
    [InlineData("--count", "3")]
    [InlineData("-n", "3")]
    public async Task InvokeAsync_DemoWithCount_PublishesThatManyPerBatch(string option, string value)
    {
        var console = new CapturedConsole();

        int exitCode = await MqCommandLine.InvokeAsync(["demo", option, value, "--seed", "5"], console.Console);

        exitCode.Should().Be(0);
        console.Output.Should().Contain("Published batch 1: 3 messages, #1..#3");
        console.Output.Should().Contain("Published batch 2 while the auditor is away: 3 messages, #4..#6");
        console.Output.Should().Contain("6 published, 0 unrouted, final depth 0.");
    }

    [Theory]
    [InlineData("demo", "--bogus")]
    [InlineData("demo", "extra")]
    [InlineData("nope")]
    public async Task InvokeAsync_UnknownOptionOrCommand_ReturnsNonZeroWithoutRunning(params string[] args)
    {
        var console = new CapturedConsole();
        var error = new StringWriter();

        int exitCode = await MqCommandLine.InvokeAsync(args, console.Console, new InvocationConfiguration { Output = new StringWriter(), Error = error });

        exitCode.Should().NotBe(0);
        error.ToString().Should().Contain(args[^1]);
        console.Output.Should().BeEmpty("nothing runs when the command line is wrong");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1001")]
    public async Task InvokeAsync_CountOutOfRange_ReturnsNonZeroAndSaysWhy(string value)
    {
        var console = new CapturedConsole();
        var error = new StringWriter();

        int exitCode = await MqCommandLine.InvokeAsync(["demo", "--count", value], console.Console, new InvocationConfiguration { Output = new StringWriter(), Error = error });

        exitCode.Should().NotBe(0);
        error.ToString().Should().Contain("--count must be between 1 and 1000");
        console.Output.Should().BeEmpty();
    }

    [Fact]
    public async Task InvokeAsync_CountNotANumber_ReturnsNonZero()
    {
        var console = new CapturedConsole();
        var error = new StringWriter();

        int exitCode = await MqCommandLine.InvokeAsync(["demo", "--count", "many"], console.Console, new InvocationConfiguration { Output = new StringWriter(), Error = error });

        exitCode.Should().NotBe(0);
        error.ToString().Should().Contain("many");
        console.Output.Should().BeEmpty();
    }

    [Fact]
    public async Task InvokeAsync_DemoHelp_DescribesTheOptions()
    {
        var console = new CapturedConsole();
        var output = new StringWriter();

        int exitCode = await MqCommandLine.InvokeAsync(["demo", "--help"], console.Console, new InvocationConfiguration { Output = output });

        exitCode.Should().Be(0);
        output.ToString().Should().Contain("--count").And.Contain("--seed").And.Contain("teaching queue server");
        console.Output.Should().BeEmpty();
    }
}
