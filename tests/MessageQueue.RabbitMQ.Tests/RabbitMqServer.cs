using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using MessageQueue.ContractTests.Support;

namespace MessageQueue.RabbitMQ.Tests;

/// <summary>
/// The RabbitMQ server the tests run against: amqp://guest:guest@127.0.0.1:5672/ unless MQ_RABBITMQ_URL says
/// otherwise. `eng/rabbitmq.sh start` starts one on loopback; .ci/run does that before the tests.
/// </summary>
public static class RabbitMqServer
{
    public const string StartCommand = "eng/rabbitmq.sh install && eng/rabbitmq.sh start";

    private static readonly Lazy<bool> Reachable = new(Probe);

    private static readonly Lock ScriptGate = new();

    // The run of eng/rabbitmq.sh under way, or the last one. Runs never overlap: a run that outlived its hang guard (a
    // start on a heavily loaded machine can take longer) goes on in the background, and a second run beside it would
    // start or stop a server on the same state at the same time, leaving the script a PID file of a server that died.
    private static Task<(int ExitCode, string Output)> _script = Task.FromResult((0, string.Empty));

    public static string ConnectionString { get; } =
        Environment.GetEnvironmentVariable("MQ_RABBITMQ_URL") is { Length: > 0 } url ? url : "amqp://guest:guest@127.0.0.1:5672/";

    /// <summary>True under CI (CI=true), where a missing server is a failure rather than a reason to skip.</summary>
    public static bool Required => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Why RabbitMQ tests cannot run here, or null when they can (or must, under CI).</summary>
    public static string? SkipReason =>
        Required || Reachable.Value
            ? null
            : $"No RabbitMQ server answers at {ConnectionString}. Start one with `{StartCommand}` (or set MQ_RABBITMQ_URL), then run the tests again.";

    /// <summary>
    /// Why the server cannot be restarted from a test, or null when it can: eng/rabbitmq.sh must have started it
    /// (it never stops a server it did not start). Under CI it must be able to.
    /// </summary>
    public static string? RestartSkipReason =>
        SkipReason ?? (Required || StartedByScript
            ? null
            : $"The RabbitMQ server at {ConnectionString} was not started by eng/rabbitmq.sh, so this test may not restart it. Stop it and run `{StartCommand}`.");

    private static string StateDirectory =>
        Environment.GetEnvironmentVariable("MQ_RABBITMQ_DIR") is { Length: > 0 } dir ? dir : Path.Combine(Repository.Root(), "artifacts", "rabbitmq");

    private static bool StartedByScript
    {
        get
        {
            string pidFile = Path.Combine(StateDirectory, "server.pid");
            if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid))
            {
                return false;
            }

            try
            {
                using Process process = Process.GetProcessById(pid);
                return !process.HasExited;
            }
            catch (ArgumentException)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// How long one run of eng/rabbitmq.sh may take before the test is declared hung. The script bounds itself (60 s
    /// for the server to listen, then rabbitmqctl await_startup; 30 s for it to stop), and the server's boot is
    /// CPU-bound: 5–14 s on a quiet machine, about 50 s beside busy processes (eng/flake-hunt.sh). A signal's 30 s
    /// guard would fail a slow boot that is not a hang.
    /// </summary>
    private static readonly TimeSpan ScriptGuard = TimeSpan.FromMinutes(3);

    /// <summary>Stops the server by its PID and starts it again on the same state (eng/rabbitmq.sh restart).</summary>
    public static Task RestartAsync() => RunScriptAsync("restart");

    /// <summary>Stops the server by its PID (eng/rabbitmq.sh stop); <see cref="StartAsync"/> brings it back on the same state.</summary>
    public static Task StopAsync() => RunScriptAsync("stop");

    /// <summary>Starts the server again (eng/rabbitmq.sh start) and waits until it is ready.</summary>
    public static Task StartAsync() => RunScriptAsync("start");

    /// <summary>
    /// Stops the server, runs <paramref name="whileDown"/>, and starts the server again however either ended, for the
    /// tests after this one. A start that fails after a failure before it is reported beside that failure, not
    /// instead of it.
    /// </summary>
    public static async Task WhileStoppedAsync(Func<Task> whileDown)
    {
        ExceptionDispatchInfo? failure = null;
        try
        {
            await StopAsync();
            await whileDown();
        }
#pragma warning disable CA1031 // Held, and thrown again below once the server is started.
        catch (Exception error)
#pragma warning restore CA1031
        {
            failure = ExceptionDispatchInfo.Capture(error);
        }

        try
        {
            await StartAsync();
        }
        catch (Exception startFailure) when (failure is not null)
        {
            throw new AggregateException(failure.SourceException, startFailure);
        }

        failure?.Throw();
    }

    /// <summary>
    /// Waits for a run of eng/rabbitmq.sh that a test before this one left under way (its start outlived the hang
    /// guard), so that this test finds the server as that run leaves it rather than failing for the test before it.
    /// </summary>
    public static async Task SettledAsync()
    {
        Task script;
        lock (ScriptGate)
        {
            script = _script;
        }

        // Ended, whichever way: the test before this one reported how.
        await Task.WhenAny(script).OrHang("the run of eng/rabbitmq.sh that a test before this one started", ScriptGuard);
    }

    private static async Task RunScriptAsync(string command)
    {
        Task<(int ExitCode, string Output)> run;
        lock (ScriptGate)
        {
            run = _script = RunAfterAsync(_script, command);
        }

        (int exitCode, string output) = await run.OrHang($"eng/rabbitmq.sh {command}", ScriptGuard);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"eng/rabbitmq.sh {command} exited with {exitCode}:\n{output}");
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAfterAsync(Task previous, string command)
    {
        await previous.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var start = new ProcessStartInfo("bash", [Path.Combine(Repository.Root(), "eng", "rabbitmq.sh"), command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Repository.Root(),
        };
        using Process process = Process.Start(start) ?? throw new InvalidOperationException("Could not start eng/rabbitmq.sh.");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, $"{await output}\n{await errors}");
    }

    public static RabbitMqOptions Options(string clientName = "tests") => new() { ConnectionString = ConnectionString, ClientName = clientName };

    private static bool Probe()
    {
        var uri = new Uri(ConnectionString);
        using var client = new TcpClient();
        try
        {
            return client.ConnectAsync(uri.Host, uri.Port > 0 ? uri.Port : 5672).Wait(TimeSpan.FromSeconds(2)) && client.Connected;
        }
        catch (AggregateException)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
