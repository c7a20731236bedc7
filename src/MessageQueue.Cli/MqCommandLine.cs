using System.CommandLine;
using MessageQueue.Cli.Demo;
using MessageQueue.Cli.Inspect;
using Spectre.Console;

namespace MessageQueue.Cli;

/// <summary>The <c>mq</c> command line: the root command and its subcommands.</summary>
internal static class MqCommandLine
{
    /// <summary>Builds the root command. Every subcommand writes through <paramref name="console"/>.</summary>
    public static RootCommand CreateRootCommand(IAnsiConsole console)
    {
        ArgumentNullException.ThrowIfNull(console);
        var root = new RootCommand("mq: demos and tools for MessageQueue, the in-process publish/subscribe broker.");
        root.Subcommands.Add(DemoCommand.Create(console));
        root.Subcommands.Add(InspectCommand.Create(console));
        return root;
    }

    /// <summary>
    /// Parses <paramref name="args"/> and runs the command they name. Parse errors and help go to
    /// <paramref name="configuration"/>'s writers (the process's standard streams by default).
    /// </summary>
    /// <returns>The exit code: 0 on success, non-zero on a parse error or a failed run.</returns>
    public static Task<int> InvokeAsync(
        IReadOnlyList<string> args,
        IAnsiConsole console,
        InvocationConfiguration? configuration = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        return CreateRootCommand(console).Parse(args).InvokeAsync(configuration, cancellationToken);
    }
}
