using MessageQueue.Cli.Demo;

namespace MessageQueue.Cli.Tests.Demo;

/// <summary>The accounting must be able to say no: each test breaks one thing and expects it to show.</summary>
public sealed class SubscriberAccountTests
{
    private static readonly PublishedMessage Add = Message(1, "add");
    private static readonly PublishedMessage Update = Message(2, "update");
    private static readonly PublishedMessage Delete = Message(3, "delete");
    private static readonly PublishedMessage[] Published = [Add, Update, Delete];

    [Fact]
    public void Compute_EveryMatchedMessageReceivedAndAcked_Balances()
    {
        var log = new SubscriberLog("indexer", ["add", "update"]);
        log.Record(Add.MessageId, attempt: 1, acked: true);
        log.Record(Update.MessageId, attempt: 1, acked: true);

        SubscriberAccount account = SubscriberAccount.Compute(log, Published, expectedRedeliveries: 0);

        account.Matched.Should().Be(2);
        account.Received.Should().Be(2);
        account.Acked.Should().Be(2);
        account.Missing.Should().Be(0);
        account.Balanced.Should().BeTrue();
        account.DescribeProblems().Should().BeEmpty();
    }

    [Fact]
    public void Compute_MatchedMessageNeverArrived_CountsItMissing()
    {
        var log = new SubscriberLog("indexer", ["add", "update"]);
        log.Record(Add.MessageId, attempt: 1, acked: true);

        SubscriberAccount account = SubscriberAccount.Compute(log, Published, expectedRedeliveries: 0);

        account.Missing.Should().Be(1);
        account.Balanced.Should().BeFalse();
        account.DescribeProblems().Should().Contain(problem => problem.Contains("missing 1 of 2", StringComparison.Ordinal));
    }

    [Fact]
    public void Compute_MessageOutsideTheFilters_CountsItUnexpected()
    {
        var log = new SubscriberLog("janitor", ["delete"]);
        log.Record(Delete.MessageId, attempt: 1, acked: true);
        log.Record(Add.MessageId, attempt: 1, acked: true);

        SubscriberAccount account = SubscriberAccount.Compute(log, Published, expectedRedeliveries: 0);

        account.Unexpected.Should().Be(1);
        account.Acked.Should().Be(1, "only acks of matched messages count");
        account.Balanced.Should().BeFalse();
    }

    [Fact]
    public void Compute_ReceivedButNotAcked_DoesNotBalance()
    {
        var log = new SubscriberLog("janitor", ["delete"]);
        log.Record(Delete.MessageId, attempt: 1, acked: false);

        SubscriberAccount account = SubscriberAccount.Compute(log, Published, expectedRedeliveries: 0);

        account.Missing.Should().Be(0);
        account.Acked.Should().Be(0);
        account.Balanced.Should().BeFalse();
    }

    [Fact]
    public void Compute_RedeliveryTheScenarioDidNotProvoke_DoesNotBalance()
    {
        var log = new SubscriberLog("janitor", ["delete"]);
        log.Record(Delete.MessageId, attempt: 1, acked: false);
        log.Record(Delete.MessageId, attempt: 2, acked: true);

        SubscriberAccount unexpected = SubscriberAccount.Compute(log, Published, expectedRedeliveries: 0);
        SubscriberAccount provoked = SubscriberAccount.Compute(log, Published, expectedRedeliveries: 1);

        unexpected.Redelivered.Should().Be(1);
        unexpected.Balanced.Should().BeFalse();
        provoked.Balanced.Should().BeTrue();
    }

    [Fact]
    public async Task WhenAckedAsync_TargetReachedLater_CompletesOnTheAckThatReachesIt()
    {
        var log = new SubscriberLog("janitor", ["delete"]);
        Task reached = log.WhenAckedAsync(2);

        log.Record(Add.MessageId, attempt: 1, acked: true);
        reached.IsCompleted.Should().BeFalse();
        log.Record(Update.MessageId, attempt: 1, acked: false);
        reached.IsCompleted.Should().BeFalse("an unacked delivery does not count");
        log.Record(Delete.MessageId, attempt: 1, acked: true);

        await reached;
        log.WhenAckedAsync(2).IsCompleted.Should().BeTrue();
    }

    private static PublishedMessage Message(long sequence, string eventName) =>
        new(1, Guid.NewGuid(), sequence, eventName, new DbChange("orders", (int)sequence, eventName));
}
