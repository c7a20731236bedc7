using MessageQueue.Cli;
using Spectre.Console;

return await MqCommandLine.InvokeAsync(args, AnsiConsole.Console).ConfigureAwait(false);
