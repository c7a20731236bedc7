using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace MessageQueue.Cli.Demo;

/// <summary><c>mq demo</c>: runs <see cref="DemoScenario"/> and exits with 0 when its accounting balances, 1 otherwise.</summary>
internal static class DemoCommand
{
    /// <summary>The store file <c>mq demo</c> uses when none is given, in the current directory.</summary>
    public const string DefaultStore = "mq-demo.db";

    public static Command Create(IAnsiConsole console)
    {
        ArgumentNullException.ThrowIfNull(console);
        var defaults = new DemoOptions();

        var count = new Option<int>("--count", "-n")
        {
            Description = string.Create(
                CultureInfo.InvariantCulture,
                $"Messages the publisher sends per batch, {DemoOptions.MinCount} to {DemoOptions.MaxCount}."),
            DefaultValueFactory = _ => defaults.Count,
        };
        count.Validators.Add(static result =>
        {
            // Validators run even when the token is not a number (the parser reports that itself), so
            // read the token rather than the converted value, which would throw.
            if (result.Tokens is [{ Value: var text }]
                && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value)
                && value is < DemoOptions.MinCount or > DemoOptions.MaxCount)
            {
                result.AddError(string.Create(
                    CultureInfo.InvariantCulture,
                    $"--count must be between {DemoOptions.MinCount} and {DemoOptions.MaxCount}; got {value}."));
            }
        });

        var seed = new Option<int>("--seed")
        {
            Description = "Seed that picks each message's event and row; the same seed repeats the same run.",
            DefaultValueFactory = _ => defaults.Seed,
        };

        var store = new Option<FileInfo>("--store")
        {
            Description = "The SQLite store file the queue is kept in; created if missing. Run the demo twice on one file to see the auditor catch up across a restart.",
            DefaultValueFactory = _ => new FileInfo(DefaultStore),
        };

        var inMemory = new Option<bool>("--in-memory")
        {
            Description = "Keep everything in memory, without a store file.",
        };

        var command = new Command(
            "demo",
            "Runs the teaching queue server scenario on a SQLite store: a durable subscriber disconnects holding an unacked " +
            "message, misses a batch and catches up, within the run and across runs. Exits with 0 when every message reached every subscriber that matched it.");
        command.Options.Add(count);
        command.Options.Add(seed);
        command.Options.Add(store);
        command.Options.Add(inMemory);
        command.SetAction(async (ParseResult parseResult, CancellationToken cancellationToken) =>
        {
            var options = new DemoOptions
            {
                Count = parseResult.GetValue(count),
                Seed = parseResult.GetValue(seed),
                StorePath = parseResult.GetValue(inMemory) ? null : parseResult.GetValue(store)!.FullName,
            };
            DemoResult result = await new DemoScenario(console).RunAsync(options, cancellationToken).ConfigureAwait(false);
            return result.ExitCode;
        });
        return command;
    }
}
