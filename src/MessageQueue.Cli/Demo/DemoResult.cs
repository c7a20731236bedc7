using System.Globalization;

namespace MessageQueue.Cli.Demo;

/// <summary>Everything <see cref="DemoScenario"/> observed, and whether it adds up.</summary>
internal sealed record DemoResult
{
    public required DemoOptions Options { get; init; }

    /// <summary>Gets every message published, in publish order.</summary>
    public required IReadOnlyList<PublishedMessage> Published { get; init; }

    /// <summary>Gets one account per subscriber: indexer, janitor, auditor.</summary>
    public required IReadOnlyList<SubscriberAccount> Accounts { get; init; }

    /// <summary>Gets the delivery the auditor read and left unacked before it disconnected.</summary>
    public DeliveryRecord? Held { get; init; }

    /// <summary>Gets how many deliveries the broker's snapshot showed the auditor holding unsettled just before it disconnected.</summary>
    public int HeldAtDisconnect { get; init; }

    /// <summary>Gets what acking the held delivery after the disconnect returned; the broker must refuse it (false).</summary>
    public bool? LateAckAccepted { get; init; }

    /// <summary>Gets the sequences the auditor's filters matched while it was away, in publish order.</summary>
    public IReadOnlyList<long> MissedWhileAway { get; init; } = [];

    /// <summary>Gets the backlog the broker's snapshot showed for the durable subscription while nobody was attached.</summary>
    public int BacklogWhileAway { get; init; }

    /// <summary>Gets what the auditor read after it reconnected, in the order it read it.</summary>
    public IReadOnlyList<DeliveryRecord> CatchUp { get; init; } = [];

    /// <summary>Gets the queue's published count from the broker's snapshot.</summary>
    public long QueuePublished { get; init; }

    /// <summary>Gets the queue's unrouted count from the broker's snapshot.</summary>
    public long QueueUnrouted { get; init; }

    /// <summary>Gets the queue's depth from the broker's snapshot at the end, with every consumer still attached.</summary>
    public int FinalDepth { get; init; }

    /// <summary>Gets the store file, or null for a run in memory.</summary>
    public string? StorePath { get; init; }

    /// <summary>Gets how many messages the store held for the auditor when the run started (left by an earlier run).</summary>
    public int KeptAtStart { get; init; }

    /// <summary>Gets what the auditor read first: the messages an earlier run left for it in the store.</summary>
    public IReadOnlyList<DeliveryRecord> CarriedOver { get; init; } = [];

    /// <summary>Gets the sequences of the batch published at the end for the next run, with the auditor offline.</summary>
    public IReadOnlyList<long> KeptForNextRun { get; init; } = [];

    /// <summary>Gets the durable subscription's backlog after the last batch, as the next run will find it.</summary>
    public int BacklogAtEnd { get; init; }

    /// <summary>Gets why the scenario stopped early, or null when it ran to the end.</summary>
    public string? Failure { get; init; }

    /// <summary>
    /// Gets whether the auditor's catch-up was right: first the message it held unacked, with attempt 2,
    /// then exactly the messages it missed, in publish order, each on its first attempt.
    /// </summary>
    public bool CatchUpInOrder =>
        Held is not null
        && CatchUp.Count == MissedWhileAway.Count + 1
        && CatchUp[0].MessageId == Held.MessageId
        && CatchUp[0].Attempt == 2
        && CatchUp.Skip(1).Select(delivery => delivery.Sequence).SequenceEqual(MissedWhileAway)
        && CatchUp.Skip(1).All(delivery => delivery.Attempt == 1);

    /// <summary>Gets everything that does not add up; empty when the run balances.</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            var problems = new List<string>();
            if (Failure is not null)
            {
                problems.Add(Failure);
            }

            foreach (SubscriberAccount account in Accounts)
            {
                problems.AddRange(account.DescribeProblems());
            }

            if (HeldAtDisconnect != 1)
            {
                problems.Add(Invariant($"the auditor held {HeldAtDisconnect} unsettled deliveries at disconnect, not 1"));
            }

            if (LateAckAccepted != false)
            {
                problems.Add("the broker did not refuse the auditor's ack after it disconnected");
            }

            if (!CatchUpInOrder)
            {
                problems.Add("the auditor's catch-up was not its unacked message (attempt 2) followed by what it missed, in order");
            }

            if (BacklogWhileAway != MissedWhileAway.Count + 1)
            {
                problems.Add(Invariant($"the durable subscription's backlog while away was {BacklogWhileAway}, not {MissedWhileAway.Count + 1}"));
            }

            if (QueuePublished != Published.Count)
            {
                problems.Add(Invariant($"the broker counted {QueuePublished} published messages, the publisher {Published.Count}"));
            }

            if (FinalDepth != 0)
            {
                problems.Add(Invariant($"the queue's final depth is {FinalDepth}, not 0"));
            }

            if (CarriedOver.Count != KeptAtStart)
            {
                problems.Add(Invariant($"the store held {KeptAtStart} messages for the auditor at the start, and it caught up on {CarriedOver.Count}"));
            }

            long firstOfThisRun = Published.Count > 0 ? Published[0].Sequence : long.MaxValue;
            if (CarriedOver.Any(delivery => delivery.Sequence >= firstOfThisRun))
            {
                problems.Add("the auditor's catch-up from the store included a message of this run");
            }

            if (BacklogAtEnd != KeptForNextRun.Count)
            {
                problems.Add(Invariant($"the durable subscription kept {BacklogAtEnd} messages for the next run, not the {KeptForNextRun.Count} left for it"));
            }

            return problems;
        }
    }

    /// <summary>Gets whether every message reached every subscriber that matched it, and everything else adds up.</summary>
    public bool Balanced => Problems.Count == 0;

    /// <summary>Gets the process exit code: 0 when the run balances, 1 otherwise.</summary>
    public int ExitCode => Balanced ? 0 : 1;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
