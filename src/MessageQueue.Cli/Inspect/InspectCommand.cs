using System.CommandLine;
using System.Globalization;
using MessageQueue.Sqlite;
using Spectre.Console;

namespace MessageQueue.Cli.Inspect;

/// <summary><c>mq inspect &lt;file&gt;</c>: shows what a SQLite store holds. Exits with 0, or 1 when the file cannot be read as a store.</summary>
internal static class InspectCommand
{
    public static Command Create(IAnsiConsole console)
    {
        ArgumentNullException.ThrowIfNull(console);
        var file = new Argument<FileInfo>("file") { Description = "The store file, as given to SqliteMessageStore." };
        file.Validators.Add(static result =>
        {
            if (result.Tokens is [{ Value: var path }] && !File.Exists(path))
            {
                result.AddError($"No store file at '{path}'. Give the path of an existing store (mq demo writes mq-demo.db in the current directory).");
            }
        });

        var command = new Command(
            "inspect",
            "Shows what a SQLite store holds: queues, durable subscriptions with their backlog and in-flight messages, and dead letters with their reasons. " +
            "The store must not be in use by a running broker.");
        command.Arguments.Add(file);
        command.SetAction((ParseResult parseResult) => Run(console, parseResult.GetValue(file)!.FullName));
        return command;
    }

    public static int Run(IAnsiConsole console, string path)
    {
        StoreReport report;
        try
        {
            using var store = new SqliteMessageStore(path);
            report = StoreReport.From(store.Load());
        }
        catch (MessageStoreException exception)
        {
            console.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[red]Cannot inspect {path}:[/] {exception.Message}");
            return 1;
        }

        Write(console, path, report);
        return 0;
    }

    private static void Write(IAnsiConsole console, string path, StoreReport report)
    {
        console.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[bold]Store[/] {path}");
        if (report.Queues.Count == 0)
        {
            console.MarkupLine("It holds nothing yet.");
            return;
        }

        Table queues = NewTable("Queues", "Queue", "Last sequence", "Messages", "Held", "Dedup ids");
        foreach (StoreReport.QueueRow queue in report.Queues)
        {
            queues.AddRow(Markup.Escape(queue.Name), Number(queue.LastSequence), Number(queue.Messages), Number(queue.Held), Number(queue.DeduplicationIds));
        }

        console.Write(queues);

        Table subscriptions = NewTable("Durable subscriptions", "Queue", "Subscription", "Filters", "Backlog", "In flight");
        foreach (StoreReport.SubscriptionRow subscription in report.Subscriptions)
        {
            subscriptions.AddRow(Markup.Escape(subscription.Queue), Markup.Escape(subscription.Name), Markup.Escape(subscription.Filters), Number(subscription.Backlog), Number(subscription.InFlight));
        }

        console.Write(subscriptions);
        console.MarkupLine("Backlog: waiting, never delivered. In flight: delivered and not settled when the broker stopped; delivered again at the next start.");

        Table deadLetters = NewTable("Dead letters", "Queue", "Seq", "Event", "Reason", "From", "Attempts", "Detail");
        foreach (StoreReport.DeadLetterRow deadLetter in report.DeadLetters)
        {
            deadLetters.AddRow(
                Markup.Escape(deadLetter.Queue),
                Number(deadLetter.Sequence),
                Markup.Escape(deadLetter.Event),
                Markup.Escape(deadLetter.Reason),
                Markup.Escape(deadLetter.Subscription),
                Markup.Escape(deadLetter.Attempts),
                Markup.Escape(deadLetter.Detail));
        }

        console.Write(deadLetters);
        if (report.DeadLetters.Count == 0)
        {
            console.MarkupLine("No dead letters.");
        }
    }

    private static Table NewTable(string title, params string[] columns)
    {
        var table = new Table().Title(title).Border(TableBorder.Simple);
        foreach (string column in columns)
        {
            table.AddColumn(new TableColumn(column) { Padding = new Padding(0, 0, 1, 0) });
        }

        return table;
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
