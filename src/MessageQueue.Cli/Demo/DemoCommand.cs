using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace MessageQueue.Cli.Demo;

/// <summary><c>mq demo</c>: runs <see cref="DemoScenario"/> and exits with 0 when its accounting balances, 1 otherwise.</summary>
internal static class DemoCommand
{
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

        var command = new Command(
            "demo",
            "Runs the teaching queue server scenario in memory: a durable subscriber disconnects holding an unacked " +
            "message, misses a batch and catches up. Exits with 0 when every message reached every subscriber that matched it.");
        command.Options.Add(count);
        command.Options.Add(seed);
        command.SetAction(async (ParseResult parseResult, CancellationToken cancellationToken) =>
        {
            var options = new DemoOptions { Count = parseResult.GetValue(count), Seed = parseResult.GetValue(seed) };
            DemoResult result = await new DemoScenario(console).RunAsync(options, cancellationToken).ConfigureAwait(false);
            return result.ExitCode;
        });
        return command;
    }
}
