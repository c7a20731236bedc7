using System.Globalization;
using Spectre.Console;

namespace MessageQueue.Cli.Demo;

/// <summary>Writes the demo's accounting: a table per subscriber, the queue's snapshot and the verdict.</summary>
internal static class DemoReport
{
    /// <summary>The verdict's opening when the run balances; tests look for it.</summary>
    public const string BalancedLine = "Result: every message reached every subscriber that matched it; queue empty.";

    /// <summary>The verdict of a balanced run on a store, which leaves a batch for the next run.</summary>
    public const string BalancedWithStoreLine = "Result: every message reached every subscriber that matched it; the store keeps only the batch for the next run.";

    /// <summary>The verdict's opening when it does not.</summary>
    public const string UnbalancedLine = "Result: NOT every message reached every subscriber that matched it";

    public static void Write(IAnsiConsole console, DemoResult result)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(result);

        var table = new Table()
            .Title("Accounting")
            .Border(TableBorder.Simple)
            .AddColumn("Subscriber")
            .AddColumn("Filters")
            .AddColumn(new TableColumn("Matched").RightAligned())
            .AddColumn(new TableColumn("Received").RightAligned())
            .AddColumn(new TableColumn("Acked").RightAligned())
            .AddColumn(new TableColumn("Redelivered").RightAligned())
            .AddColumn(new TableColumn("Missing").RightAligned());
        foreach (TableColumn column in table.Columns)
        {
            // Narrow padding keeps the table within 80 columns, the width of output that is not a terminal.
            column.Padding = new Padding(0, 0, 1, 0);
        }

        foreach (SubscriberAccount account in result.Accounts)
        {
            string name = account.DurableName is null ? account.Name : account.Name + " *";
            string missing = Number(account.Missing);
            table.AddRow(
                Markup.Escape(name),
                Markup.Escape(string.Join(", ", account.Filters)),
                Number(account.Matched),
                Number(account.Received),
                Number(account.Acked),
                Number(account.Redelivered),
                account.Missing == 0 ? missing : $"[red]{missing}[/]");
        }

        console.WriteLine();
        console.Write(table);
        console.MarkupLineInterpolated(
            CultureInfo.InvariantCulture,
            $"* durable. Received and acked count distinct message ids. The auditor's one redelivery is the message it held unacked when it disconnected.");
        console.MarkupLineInterpolated(
            CultureInfo.InvariantCulture,
            $"Queue '{DemoScenario.QueueName}' (broker snapshot): {result.QueuePublished} published in this run, {result.QueueUnrouted} unrouted, final depth {result.FinalDepth}.");
        if (result.StorePath is { } store)
        {
            console.MarkupLineInterpolated(
                CultureInfo.InvariantCulture,
                $"Store {store}: caught up on {result.CarriedOver.Count} of {result.KeptAtStart} kept by the last run; {result.BacklogAtEnd} kept for the next (batch 3).");
        }

        IReadOnlyList<string> problems = result.Problems;
        if (problems.Count == 0)
        {
            console.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[green]{(result.StorePath is null ? BalancedLine : BalancedWithStoreLine)}[/]");
        }
        else
        {
            console.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[red]{UnbalancedLine}:[/]");
            foreach (string problem in problems)
            {
                console.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"  - {problem}");
            }
        }
    }

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);
}
