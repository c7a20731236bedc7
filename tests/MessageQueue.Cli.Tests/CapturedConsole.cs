using Spectre.Console;

namespace MessageQueue.Cli.Tests;

/// <summary>A Spectre console that writes plain text (no ANSI codes, no colours) into a string.</summary>
internal sealed class CapturedConsole
{
    private readonly StringWriter _writer = new();

    /// <param name="width">The console's width. Wide by default, so that narration lines do not wrap
    /// and tests can look for whole sentences; 80 is what Spectre assumes for redirected output.</param>
    public CapturedConsole(int width = 400)
    {
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(_writer),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        Console.Profile.Width = width;
    }

    public IAnsiConsole Console { get; }

    public string Output => _writer.ToString();
}
