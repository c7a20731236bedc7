using MessageQueue.Cli.Demo;

namespace MessageQueue.Cli.Tests.Demo;

public sealed class DemoScenarioTests
{
    [Fact]
    public async Task RunAsync_DefaultOptions_EverySubscriberReceivesExactlyWhatItMatched()
    {
        DemoResult result = await RunAsync(new DemoOptions());

        result.Problems.Should().BeEmpty();
        result.Balanced.Should().BeTrue();
        result.ExitCode.Should().Be(0);
        result.Accounts.Select(account => account.Name).Should().Equal("indexer", "janitor", "auditor");
        foreach (SubscriberAccount account in result.Accounts)
        {
            account.ReceivedIds.Should().BeEquivalentTo(account.MatchedIds, "{0} must receive exactly what its filters match", account.Name);
            account.Missing.Should().Be(0);
            account.Acked.Should().Be(account.Matched);
        }

        result.FinalDepth.Should().Be(0);
        result.QueuePublished.Should().Be(12);
    }

    [Fact]
    public async Task RunAsync_DefaultOptions_MatchedSetsFollowTheFilters()
    {
        DemoResult result = await RunAsync(new DemoOptions());

        // Computed here from the event names alone, without any topic matcher.
        HashSet<Guid> Ids(Func<string, bool> wanted) =>
            result.Published.Where(message => wanted(message.Event)).Select(message => message.MessageId).ToHashSet();
        Account(result, "indexer").MatchedIds.Should().BeEquivalentTo(Ids(e => e is "add" or "update"));
        Account(result, "janitor").MatchedIds.Should().BeEquivalentTo(Ids(e => e is "delete"));
        Account(result, "auditor").MatchedIds.Should().BeEquivalentTo(Ids(_ => true));
        Account(result, "janitor").Matched.Should().BePositive("the default seed publishes deletes, so the janitor has work");
        Account(result, "indexer").Matched.Should().BePositive();
    }

    [Fact]
    public async Task RunAsync_AuditorReconnects_GetsItsUnackedMessageBackFirstWithAttempt2ThenWhatItMissedInOrder()
    {
        const int Count = 6;
        DemoResult result = await RunAsync(new DemoOptions { Count = Count });

        long[] missed = [.. result.Published.Where(message => message.Batch == 2).Select(message => message.Sequence)];
        missed.Should().Equal(Enumerable.Range(Count + 1, Count).Select(sequence => (long)sequence));

        result.Held.Should().NotBeNull();
        result.Held!.Attempt.Should().Be(1);
        result.Held.Sequence.Should().Be((Count / 2) + 1, "the auditor keeps the middle message of batch 1");
        result.HeldAtDisconnect.Should().Be(1);
        result.LateAckAccepted.Should().BeFalse("a delivery taken back at disconnect can no longer be acked");
        result.BacklogWhileAway.Should().Be(Count + 1);

        result.CatchUp.Should().HaveCount(Count + 1);
        result.CatchUp[0].MessageId.Should().Be(result.Held.MessageId);
        result.CatchUp[0].Attempt.Should().Be(2);
        result.CatchUp.Skip(1).Select(delivery => delivery.Sequence).Should().Equal(missed);
        result.CatchUp.Skip(1).Should().OnlyContain(delivery => delivery.Attempt == 1);
        result.CatchUpInOrder.Should().BeTrue();

        SubscriberAccount auditor = Account(result, "auditor");
        auditor.Redelivered.Should().Be(1);
        auditor.LaterAttempts.Should().Be(1);
        auditor.Acked.Should().Be(2 * Count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(17)]
    [InlineData(300)] // more than MaxInFlight (8) and more than the queue's minimum bound (64)
    public async Task RunAsync_VariousCounts_Balances(int count)
    {
        DemoResult result = await RunAsync(new DemoOptions { Count = count, Seed = count });

        result.Problems.Should().BeEmpty();
        result.Published.Should().HaveCount(2 * count);
        result.Published.Select(message => message.Sequence).Should().Equal(Enumerable.Range(1, 2 * count).Select(sequence => (long)sequence));
        result.CatchUp.Should().HaveCount(count + 1);
        Account(result, "auditor").Acked.Should().Be(2 * count);
        (Account(result, "indexer").Received + Account(result, "janitor").Received)
            .Should().Be(2 * count, "add, update and delete split the messages between indexer and janitor");
        result.FinalDepth.Should().Be(0);
    }

    [Fact]
    public async Task RunAsync_DefaultOptions_TellsTheStoryAndPrintsTheAccounting()
    {
        var console = new CapturedConsole();

        DemoResult result = await new DemoScenario(console.Console).RunAsync(new DemoOptions());

        result.Balanced.Should().BeTrue();
        string output = console.Output;
        output.Should().Contain("Published batch 1: 6 messages, #1..#6");
        output.Should().Contain($"auditor read 6 messages, acked 5 and kept #4 {result.Held!.Event} unacked.");
        output.Should().Contain("auditor disconnected holding 1 unacked message");
        output.Should().Contain("returned false");
        output.Should().Contain("Published batch 2 while the auditor is away: 6 messages, #7..#12");
        output.Should().Contain($"caught up with 7 messages: first #4 {result.Held.Event} again (attempt 2), then the 6 it missed, in publish order: #7, #8, #9, #10, #11, #12.");
        output.Should().Contain("Accounting");
        output.Should().MatchRegex(@"Subscriber\s+Filters\s+Matched\s+Received\s+Acked\s+Redelivered\s+Missing");
        output.Should().MatchRegex(@"auditor \*\s+#\s+12\s+12\s+12\s+1\s+0");
        output.Should().Contain("12 published in this run, 0 unrouted, final depth 0.");
        output.Should().Contain(DemoReport.BalancedLine);
        output.Should().NotContain(DemoReport.UnbalancedLine);
    }

    [Fact]
    public async Task RunAsync_RedirectedOutput_TableFitsIn80ColumnsUncut()
    {
        var console = new CapturedConsole(width: 80);

        await new DemoScenario(console.Console).RunAsync(new DemoOptions());

        string[] lines = console.Output.Split('\n');
        lines.Should().OnlyContain(line => line.TrimEnd().Length <= 80);
        console.Output.Should().NotContain("\u2026", "no column header or cell is cut short");
        console.Output.Should().MatchRegex(@"Subscriber\s+Filters\s+Matched\s+Received\s+Acked\s+Redelivered\s+Missing");
    }

    [Fact]
    public async Task RunAsync_SameSeedTwice_PrintsTheSameOutput()
    {
        var first = new CapturedConsole();
        var second = new CapturedConsole();
        var other = new CapturedConsole();

        await new DemoScenario(first.Console).RunAsync(new DemoOptions { Count = 10, Seed = 7 });
        await new DemoScenario(second.Console).RunAsync(new DemoOptions { Count = 10, Seed = 7 });
        await new DemoScenario(other.Console).RunAsync(new DemoOptions { Count = 10, Seed = 8 });

        second.Output.Should().Be(first.Output);
        other.Output.Should().NotBe(first.Output, "the seed picks the events");
    }

    [Fact]
    public async Task RunAsync_TimeLimitExpires_ReportsTheFailureInsteadOfHanging()
    {
        var console = new CapturedConsole();
        var scenario = new DemoScenario(console.Console, new ImmediateTimeProvider());

        DemoResult result = await scenario.RunAsync(new DemoOptions { Timeout = TimeSpan.FromMilliseconds(1) });

        result.Failure.Should().StartWith("timed out");
        result.Balanced.Should().BeFalse();
        result.ExitCode.Should().Be(1);
        console.Output.Should().Contain("Timed out");
        console.Output.Should().Contain(DemoReport.UnbalancedLine);
        console.Output.Should().NotContain(DemoReport.BalancedLine);
    }

    [Fact]
    public async Task RunAsync_CancelledToken_ThrowsOperationCanceledException()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        Func<Task> run = () => new DemoScenario(new CapturedConsole().Console).RunAsync(new DemoOptions(), cancelled.Token);

        await run.Should().ThrowAsync<OperationCanceledException>();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(DemoOptions.MaxCount + 1)]
    public async Task RunAsync_CountOutOfRange_ThrowsArgumentOutOfRangeException(int count)
    {
        var console = new CapturedConsole();

        Func<Task> run = () => new DemoScenario(console.Console).RunAsync(new DemoOptions { Count = count });

        await run.Should().ThrowAsync<ArgumentOutOfRangeException>();
        console.Output.Should().BeEmpty();
    }

    private static async Task<DemoResult> RunAsync(DemoOptions options) =>
        await new DemoScenario(new CapturedConsole().Console).RunAsync(options);

    private static SubscriberAccount Account(DemoResult result, string name) =>
        result.Accounts.Single(account => account.Name == name);
}
