using MessageQueue.Cli.Demo;

namespace MessageQueue.Cli.Tests.Demo;

/// <summary>The verdict and exit code of a run that does not add up, built by hand because a correct broker never produces one.</summary>
public sealed class DemoResultTests
{
    [Fact]
    public void ExitCode_BalancedRun_IsZero()
    {
        Balanced().ExitCode.Should().Be(0);
        Balanced().Problems.Should().BeEmpty();
    }

    [Fact]
    public void ExitCode_SubscriberMissingAMessage_IsOne()
    {
        DemoResult balanced = Balanced();
        SubscriberAccount indexer = balanced.Accounts[0];
        DemoResult result = balanced with
        {
            Accounts = [indexer with { ReceivedIds = new HashSet<Guid>(), Deliveries = 0, Acked = 0 }],
        };

        result.Balanced.Should().BeFalse();
        result.ExitCode.Should().Be(1);
        result.Problems.Should().Contain("indexer is missing 1 of 1 matched message(s)");
    }

    [Fact]
    public void ExitCode_QueueNotEmptyAtTheEnd_IsOne()
    {
        DemoResult result = Balanced() with { FinalDepth = 2 };

        result.ExitCode.Should().Be(1);
        result.Problems.Should().ContainSingle().Which.Should().Contain("final depth is 2");
    }

    [Fact]
    public void CatchUpInOrder_MissedMessagesOutOfOrder_IsFalse()
    {
        DemoResult balanced = Balanced();
        DemoResult result = balanced with { CatchUp = [balanced.CatchUp[0], balanced.CatchUp[2], balanced.CatchUp[1]] };

        result.CatchUpInOrder.Should().BeFalse();
        result.ExitCode.Should().Be(1);
    }

    [Fact]
    public void CatchUpInOrder_HeldMessageNotRedeliveredFirst_IsFalse()
    {
        DemoResult balanced = Balanced();
        DemoResult result = balanced with { CatchUp = [.. balanced.CatchUp.Skip(1), balanced.CatchUp[0]] };

        result.CatchUpInOrder.Should().BeFalse();
    }

    [Fact]
    public void Write_UnbalancedRun_PrintsTheProblemsNotTheBalancedVerdict()
    {
        var console = new CapturedConsole();

        DemoReport.Write(console.Console, Balanced() with { FinalDepth = 3, LateAckAccepted = true });

        console.Output.Should().Contain(DemoReport.UnbalancedLine);
        console.Output.Should().Contain("final depth is 3");
        console.Output.Should().Contain("did not refuse the auditor's ack");
        console.Output.Should().NotContain(DemoReport.BalancedLine);
    }

    /// <summary>A hand-made run of one message per batch that adds up: the auditor held #1 and missed #2 and #3.</summary>
    private static DemoResult Balanced()
    {
        PublishedMessage first = Message(1, 1, "add");
        PublishedMessage second = Message(2, 2, "add");
        PublishedMessage third = Message(2, 3, "add");
        return new DemoResult
        {
            Options = new DemoOptions { Count = 1 },
            Published = [first, second, third],
            Accounts =
            [
                new SubscriberAccount
                {
                    Name = "indexer",
                    Filters = ["add"],
                    MatchedIds = new HashSet<Guid> { first.MessageId },
                    ReceivedIds = new HashSet<Guid> { first.MessageId },
                    Acked = 1,
                    Deliveries = 1,
                },
            ],
            Held = new DeliveryRecord(first.MessageId, 1, "add", 1),
            HeldAtDisconnect = 1,
            LateAckAccepted = false,
            MissedWhileAway = [2, 3],
            BacklogWhileAway = 3,
            CatchUp =
            [
                new DeliveryRecord(first.MessageId, 1, "add", 2),
                new DeliveryRecord(second.MessageId, 2, "add", 1),
                new DeliveryRecord(third.MessageId, 3, "add", 1),
            ],
            QueuePublished = 3,
            FinalDepth = 0,
        };
    }

    private static PublishedMessage Message(int batch, long sequence, string eventName) =>
        new(batch, Guid.NewGuid(), sequence, eventName, new DbChange("orders", (int)sequence, eventName));
}
