using System.Globalization;
using System.Text;

namespace MessageQueue.ContractTests.Support;

/// <summary>
/// One run of one test, as the guarded test framework (<see cref="GuardedTestFramework"/>) starts it. It knows
/// what the test is waiting for right now (the signals passed to <see cref="TestWait"/>) and which
/// <see cref="TestGate"/>s the test holds, so that a test that hangs says what it was waiting for instead of
/// being ended without a word.
/// </summary>
/// <remarks>
/// The current run flows with the test's execution context (an <see cref="AsyncLocal{T}"/>), into every task and
/// thread the test starts, so a gate or a wait is recorded against the test that made it even when tests run in
/// parallel.
/// </remarks>
public sealed class TestRun
{
    /// <summary>The environment variable that runs every test this many times in one process.</summary>
    public const string RepeatVariable = "MQ_TEST_REPEAT";

    /// <summary>
    /// How long one run of a test may take before it is failed as hung. Far above any test's normal duration: the
    /// longest (the crash cycles, the RabbitMQ server restarts) take 20–30 s on a quiet machine and up to about 80 s
    /// beside busy processes. It is above <see cref="TestWait.HangGuard"/>, so a signal that never comes is reported by
    /// its own wait first, and below the blame collector's backstop (tests/test.runsettings).
    /// </summary>
    public static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(180);

    private static readonly AsyncLocal<TestRun?> CurrentRun = new();

    private readonly object _lock = new();
    private readonly List<string> _waits = [];
    private readonly List<TestGate> _gates = [];
    private readonly TimeSpan _hangGuard;
    private string? _lastSignal;

    private TestRun(string test, int run, int runs, TimeSpan hangGuard)
    {
        Test = test;
        Run = run;
        Runs = runs;
        _hangGuard = hangGuard;
    }

    /// <summary>The run of the test whose code is calling, or <see langword="null"/> outside a guarded test.</summary>
    public static TestRun? Current => CurrentRun.Value;

    /// <summary>
    /// How many times each test runs, from <see cref="RepeatVariable"/> (1 when unset). A race that shows once in
    /// a hundred suite runs shows in seconds when one test's steps run a few thousand times.
    /// </summary>
    public static int Repeat { get; } = ReadRepeat(Environment.GetEnvironmentVariable(RepeatVariable));

    /// <summary>The test's display name.</summary>
    public string Test { get; }

    /// <summary>Which run this is, from 1.</summary>
    public int Run { get; }

    /// <summary>How many runs of the test there are.</summary>
    public int Runs { get; }

    /// <summary>
    /// Runs a test <paramref name="runs"/> times, each run bounded by <paramref name="hangGuard"/> on
    /// <paramref name="timeProvider"/>, and returns the time the runs took and the failure that ends them, if any.
    /// The first run that fails ends them; with more than one run its failure is wrapped in a
    /// <see cref="RepeatedRunFailedException"/> that says which run it was. A run that does not finish in time
    /// ends them with a <see cref="TestHungException"/> saying what it was waiting for, and the gates it holds
    /// are opened so that what it left waiting can finish; the run itself is not waited for any longer.
    /// </summary>
    /// <param name="test">The test's name, for the reports.</param>
    /// <param name="runs">How many times to run it.</param>
    /// <param name="hangGuard">How long one run may take.</param>
    /// <param name="timeProvider">The clock of the hang guard.</param>
    /// <param name="runOnce">Runs the test once; returns its duration in seconds and its failure, if any.</param>
    /// <param name="cancellationToken">Stops before the next run when cancelled.</param>
    public static async Task<(decimal Seconds, Exception? Failure)> RunAsync(
        string test,
        int runs,
        TimeSpan hangGuard,
        TimeProvider timeProvider,
        Func<Task<(decimal Seconds, Exception? Failure)>> runOnce,
        CancellationToken cancellationToken = default)
    {
        decimal seconds = 0;
        for (int number = 1; number <= runs && !cancellationToken.IsCancellationRequested; number++)
        {
            var run = new TestRun(test, number, runs, hangGuard);
            (decimal Seconds, Exception? Failure) result;
            try
            {
                result = await StartAsync(run, runOnce).WaitAsync(hangGuard, timeProvider, CancellationToken.None);
            }
            catch (TimeoutException)
            {
                var hung = new TestHungException(run.DescribeHang());
                run.OpenGates();
                return (seconds + (decimal)hangGuard.TotalSeconds, hung);
            }

            seconds += result.Seconds;
            if (result.Failure is not null)
            {
                return (seconds, runs == 1 ? result.Failure : new RepeatedRunFailedException(number, runs, result.Failure));
            }
        }

        return (seconds, null);
    }

    // An async method of its own, so that the run it makes current flows into the test's code and no further.
    private static async Task<(decimal Seconds, Exception? Failure)> StartAsync(TestRun run, Func<Task<(decimal Seconds, Exception? Failure)>> runOnce)
    {
        CurrentRun.Value = run;
        return await runOnce();
    }

    /// <summary>Reads a value of <see cref="RepeatVariable"/>: unset or blank is 1; anything but a whole number of 1 or more is refused.</summary>
    public static int ReadRepeat(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return 1;
        }

        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int repeat) || repeat < 1)
        {
            throw new InvalidOperationException(
                $"{RepeatVariable} is '{value}': set it to a whole number of runs, 1 or more, or leave it unset to run each test once.");
        }

        return repeat;
    }

    internal void Track(TestGate gate)
    {
        lock (_lock)
        {
            _gates.Add(gate);
        }
    }

    /// <summary>Records that the current test waits for <paramref name="what"/> until the returned scope ends.</summary>
    internal static WaitScope Waiting(string what)
    {
        if (Current is not { } run)
        {
            return default;
        }

        lock (run._lock)
        {
            run._waits.Add(what);
        }

        return new WaitScope(run, what);
    }

    private void Received(string what, bool arrived)
    {
        lock (_lock)
        {
            _waits.Remove(what);
            if (arrived)
            {
                _lastSignal = what;
            }
        }
    }

    /// <summary>
    /// Opens every gate the run still holds, so that code it left waiting can finish once the run has been
    /// given up as hung.
    /// </summary>
    private void OpenGates()
    {
        TestGate[] gates;
        lock (_lock)
        {
            gates = [.. _gates];
        }

        foreach (TestGate gate in gates)
        {
            gate.Open();
        }
    }

    /// <summary>What the run is doing: the signals it waits for, the gates still closed, the last signal that came.</summary>
    public string DescribeHang()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Hung: {Test} did not finish within {_hangGuard.TotalSeconds:0.###} s");
        if (Runs > 1)
        {
            text.Append(CultureInfo.InvariantCulture, $" (run {Run} of {Runs})");
        }

        text.Append('.');
        lock (_lock)
        {
            text.AppendLine();
            text.Append(_waits.Count == 0
                ? "Waiting for: no signal the test named, so the hang is in an await without a hang guard (a dispose, a publish, a read)."
                : "Waiting for: " + string.Join("; ", _waits.Select(w => $"'{w}'")) + ".");
            TestGate[] closed = [.. _gates.Where(g => !g.IsOpen)];
            if (closed.Length > 0)
            {
                text.AppendLine();
                text.Append("Gates still closed: " + string.Join("; ", closed.Select(g => $"'{g.Name}' ({g.Inside} inside)")) + ".");
            }

            text.AppendLine();
            text.Append(_lastSignal is null ? "No signal had arrived yet." : $"Last signal that arrived: '{_lastSignal}'.");
        }

        return text.ToString();
    }

    /// <summary>The span of one wait; ending it says whether the signal arrived.</summary>
    internal readonly struct WaitScope(TestRun? run, string what)
    {
        public void End(bool arrived) => run?.Received(what, arrived);
    }
}
