using System.Diagnostics;
using System.Globalization;
using FluentAssertions;
using MessageQueue.ContractTests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MessageQueue.Sqlite.Tests;

/// <summary>
/// Guarantee 7 against real crashes: a helper process publishes and consumes against a store file and is
/// killed with SIGKILL at a random point, again and again. After every cycle the store must open cleanly;
/// every publish that completed must still be there; nothing whose ack was committed may come back; and no message's
/// attempt number goes back.
/// </summary>
[Trait("Guarantee", "7")]
public sealed class CrashCycleTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempStoreFile _file = new();

    public void Dispose() => _file.Dispose();

    private static string HelperPath => Path.Combine(AppContext.BaseDirectory, "MessageQueue.Sqlite.CrashHelper.dll");

    private sealed class Helper : IAsyncDisposable
    {
        private readonly Process _process;

        public Helper(string store, int seed, long first, string mode, int window)
        {
            var start = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (string argument in new[] { HelperPath, store, seed.ToString(CultureInfo.InvariantCulture), first.ToString(CultureInfo.InvariantCulture), mode, window.ToString(CultureInfo.InvariantCulture) })
            {
                start.ArgumentList.Add(argument);
            }

            _process = Process.Start(start) ?? throw new InvalidOperationException("The crash helper did not start.");
        }

        /// <summary>The next line, or null when the process ended.</summary>
        public async Task<string?> ReadLineAsync()
        {
            try
            {
                return await _process.StandardOutput.ReadLineAsync().OrHang("a line from the crash helper");
            }
            catch (TimeoutException hung)
            {
                // The helper reports what it was doing when it went quiet (its watchdog writes a snapshot to stderr).
                await KillAsync();
                throw new TimeoutException($"{hung.Message} What the helper reported: {await ErrorsAsync()}", hung);
            }
        }

        public async Task<string> ErrorsAsync() => await _process.StandardError.ReadToEndAsync();

        /// <summary>SIGKILL: no handler runs, nothing is flushed.</summary>
        public async Task KillAsync()
        {
            _process.Kill();
            await _process.WaitForExitAsync().OrHang("the killed helper to exit");
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                await KillAsync();
            }

            _process.Dispose();
        }
    }

    private static long FirstNumber(int cycle) => (cycle * 10_000_000L) + 1;

    private static int FromEnvironment(string name, int otherwise) =>
        Environment.GetEnvironmentVariable(name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : otherwise;

    [Fact]
    public Task KilledAtRandomMoments_EveryCompletedPublishSurvives_AndNoCommittedAckComesBack() =>
        RunCycles(FromEnvironment("MQ_CRASH_CYCLES", 20), window: 0);

    /// <summary>
    /// The same with a memory window of 50 (QueueOptions.MaxMessagesInMemory) and a backlog of hundreds: each run starts
    /// with most of the backlog in the store only, and is killed while the queue reads it back.
    /// </summary>
    [Fact]
    public Task KilledWhileABacklogLargerThanMemoryIsReadBack_NothingIsLost_AndFirstDeliveriesKeepTheirOrder() =>
        RunCycles(FromEnvironment("MQ_CRASH_PAGING_CYCLES", 12), window: 50);

    private async Task RunCycles(int cycles, int window)
    {
        int seed = FromEnvironment("MQ_CRASH_SEED", Environment.TickCount);
        output.WriteLine($"crash seed {seed}, {cycles} cycles, memory window {window} (replay with MQ_CRASH_SEED={seed})");
        var random = new Random(seed);
        long lastFresh = 0;     // the last message delivered for the first time in this run: first deliveries come in sequence order
        int pagedOutStarts = 0; // runs that started with messages in the store only

        var published = new HashSet<long>();       // publishes that completed
        var acked = new HashSet<long>();           // acks reported, committed or not
        var ackBegun = new HashSet<long>();        // acks that began: one cut short by the kill may still have been committed
        var committedAcks = new HashSet<long>();   // acks followed by an F: committed for sure
        var unconfirmedAcks = new List<long>();
        var highestAttempt = new Dictionary<long, int>(); // per message, the highest attempt delivered so far, in any cycle
        int deliveries = 0, redeliveries = 0;

        void CheckAttempt(long number, int attempt, int cycle)
        {
            int before = highestAttempt.GetValueOrDefault(number);
            attempt.Should().BeGreaterThanOrEqualTo(before, $"message {number} was delivered as attempt {before} before, and attempt numbers never go back, not even across a crash (cycle {cycle}, seed {seed})");
            highestAttempt[number] = attempt;
            if (attempt == 1)
            {
                number.Should().BeGreaterThan(lastFresh, $"messages delivered for the first time come in sequence order, and {lastFresh} was (cycle {cycle}, seed {seed})");
                lastFresh = number;
            }
        }

        async Task Started(Helper helper, int cycle)
        {
            string? line = await helper.ReadLineAsync();
            line.Should().Be("ready .", $"the store must open cleanly after crash {cycle} (seed {seed}); stderr: {(line is null ? await helper.ErrorsAsync() : "")}");
            string[] state = (await helper.ReadLineAsync())!.Split(' ');
            state[0].Should().Be("S");
            pagedOutStarts += long.Parse(state[2], CultureInfo.InvariantCulture) > 0 ? 1 : 0;
            lastFresh = 0;
        }

        void Process(string line, int cycle, bool lastMayBeCut = false)
        {
            if (!line.EndsWith(" .", StringComparison.Ordinal))
            {
                lastMayBeCut.Should().BeTrue($"only the line the kill cut off may be incomplete: '{line}' (seed {seed})");
                return;
            }

            string[] parts = line[..^2].Split(' ');

            switch (parts[0])
            {
                case "P":
                    published.Add(long.Parse(parts[1], CultureInfo.InvariantCulture));
                    break;
                case "D":
                    long delivered = long.Parse(parts[1], CultureInfo.InvariantCulture);
                    committedAcks.Should().NotContain(delivered, $"message {delivered} was acked and the ack committed before a crash, so it must not come back (cycle {cycle}, seed {seed})");
                    CheckAttempt(delivered, int.Parse(parts[2], CultureInfo.InvariantCulture), cycle);
                    deliveries++;
                    redeliveries += parts.Length > 2 && parts[2] != "1" ? 1 : 0;
                    break;
                case "a":
                    ackBegun.Add(long.Parse(parts[1], CultureInfo.InvariantCulture));
                    break;
                case "A":
                    long ack = long.Parse(parts[1], CultureInfo.InvariantCulture);
                    acked.Add(ack);
                    unconfirmedAcks.Add(ack);
                    break;
                case "F":
                    committedAcks.UnionWith(unconfirmedAcks);
                    unconfirmedAcks.Clear();
                    break;
            }
        }

        for (int cycle = 0; cycle < cycles; cycle++)
        {
            int killAfter = random.Next(30, 600);
            // Each run numbers its messages from its own range: the pipe holds lines the test has not read
            // when the kill comes, so the test cannot know the last number a run used.
            await using var helper = new Helper(_file.Path, random.Next(), FirstNumber(cycle), "run", window);
            await Started(helper, cycle);
            string? line;
            for (int read = 0; read < killAfter; read++)
            {
                line = await helper.ReadLineAsync();
                if (line is null)
                {
                    throw new InvalidOperationException($"The helper ended by itself in cycle {cycle} (seed {seed}): {await helper.ErrorsAsync()}");
                }

                Process(line, cycle);
            }

            await helper.KillAsync();

            // What it wrote before it died is still in the pipe: every line up to the kill counts. A last
            // line cut off by the kill is ignored.
            while (await helper.ReadLineAsync() is { } rest)
            {
                Process(rest, cycle, lastMayBeCut: true);
            }

            unconfirmedAcks.Clear();
        }

        // The last start: deliver and ack whatever is left.
        await using (var drain = new Helper(_file.Path, seed, FirstNumber(cycles), "drain", window))
        {
            await Started(drain, cycles);
            var drained = new HashSet<long>();
            while (await drain.ReadLineAsync() is { } line && !line.StartsWith("done", StringComparison.Ordinal))
            {
                string[] parts = line[..^2].Split(' ');
                long number = long.Parse(parts[1], CultureInfo.InvariantCulture);
                committedAcks.Should().NotContain(number, $"message {number}'s ack was committed (seed {seed})");
                CheckAttempt(number, int.Parse(parts[2], CultureInfo.InvariantCulture), cycles);
                drained.Add(number);
            }

            // An ack the kill cut short (begun, "A" never written) may have been committed by a group commit of
            // other work: such a message may be gone. Every other completed publish must be acked or still there.
            var cutShort = ackBegun.Where(n => !acked.Contains(n)).ToHashSet();
            var missing = published.Where(n => !acked.Contains(n) && !drained.Contains(n) && !cutShort.Contains(n)).ToList();
            missing.Should().BeEmpty($"every publish that completed is acked or still there after {cycles} crashes (seed {seed})");
            cutShort.Count.Should().BeLessThanOrEqualTo(cycles * 17, "at most one ack, or one round of 16 held acks plus one, is under way when a kill comes");
            output.WriteLine($"published {published.Count}, acked {acked.Count} ({committedAcks.Count} known committed), drained {drained.Count}, deliveries {deliveries}, redeliveries {redeliveries}");
        }

        published.Count.Should().BeGreaterThan(cycles * 5, "the cycles must publish enough to mean something");
        committedAcks.Should().NotBeEmpty("the cycles must commit acks to check that they hold");
        redeliveries.Should().BePositive("crashes with unacked deliveries must lead to redeliveries");
        output.WriteLine($"runs that started with messages in the store only: {pagedOutStarts} of {cycles + 1}");
        if (window > 0)
        {
            pagedOutStarts.Should().BeGreaterThan(cycles / 2, "the runs must start with a backlog larger than the memory window to test reading it back");
        }
    }
}
