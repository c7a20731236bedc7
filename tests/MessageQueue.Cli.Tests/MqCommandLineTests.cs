using System.CommandLine;
using MessageQueue.Cli.Demo;

namespace MessageQueue.Cli.Tests;

/// <summary><c>mq</c> through the real command-line parser, as the process runs it.</summary>
public sealed class MqCommandLineTests
{
    [Fact]
    public async Task InvokeAsync_Demo_ReturnsZeroAndPrintsTheTable()
    {
        using var store = new TempDirectory();
        var console = new CapturedConsole();
        var error = new StringWriter();

        int exitCode = await MqCommandLine.InvokeAsync(["demo", "--store", store.File("demo.db")], console.Console, new InvocationConfiguration { Error = error });

        exitCode.Should().Be(0);
        error.ToString().Should().BeEmpty();
        console.Output.Should().Contain("Published batch 1: 6 messages, #1..#6");
        console.Output.Should().MatchRegex(@"Subscriber\s+Filters\s+Matched\s+Received\s+Acked\s+Redelivered\s+Missing");
        console.Output.Should().MatchRegex(@"indexer\s+add, update\s+\d+");
        console.Output.Should().MatchRegex(@"janitor\s+delete\s+\d+");
        console.Output.Should().Contain(DemoReport.BalancedWithStoreLine);
    }

    [Fact]
    [Trait("Guarantee", "7")]
    public async Task InvokeAsync_DemoTwiceOnOneStore_TheSecondRunCatchesUpOnWhatTheFirstLeft()
    {
        using var store = new TempDirectory();
        string path = store.File("demo.db");
        var first = new CapturedConsole();
        var second = new CapturedConsole();

        (await MqCommandLine.InvokeAsync(["demo", "--store", path], first.Console)).Should().Be(0);
        (await MqCommandLine.InvokeAsync(["demo", "--store", path], second.Console)).Should().Be(0);

        first.Output.Should().Contain($"on the SQLite store {path}").And.Contain("The store held nothing for 'audit'");
        first.Output.Should().Contain("Published batch 3 with the auditor offline: 6 messages, #13..#18");
        second.Output.Should().Contain("auditor reconnected after the restart and caught up on 6 messages the last run left in the store: #13, #14, #15, #16, #17, #18.");
        second.Output.Should().Contain("Published batch 1: 6 messages, #19..#24");
        second.Output.Should().Contain(DemoReport.BalancedWithStoreLine);
    }

    [Fact]
    public async Task InvokeAsync_DemoInMemory_LeavesNoFileAndEndsEmpty()
    {
        using var directory = new TempDirectory();
        var console = new CapturedConsole();

        int exitCode = await MqCommandLine.InvokeAsync(["demo", "--in-memory", "--store", directory.File("unused.db")], console.Console);

        exitCode.Should().Be(0);
        console.Output.Should().Contain("the teaching queue server, in memory").And.Contain(DemoReport.BalancedLine);
        Directory.GetFiles(directory.Path).Should().BeEmpty();
    }

    [Theory]
    [InlineData("--count", "3")]
    [InlineData("-n", "3")]
    public async Task InvokeAsync_DemoWithCount_PublishesThatManyPerBatch(string option, string value)
    {
        var console = new CapturedConsole();

        int exitCode = await MqCommandLine.InvokeAsync(["demo", option, value, "--seed", "5", "--in-memory"], console.Console);

        exitCode.Should().Be(0);
        console.Output.Should().Contain("Published batch 1: 3 messages, #1..#3");
        console.Output.Should().Contain("Published batch 2 while the auditor is away: 3 messages, #4..#6");
        console.Output.Should().Contain("6 published in this run, 0 unrouted, final depth 0.");
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
