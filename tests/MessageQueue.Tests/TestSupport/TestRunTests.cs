using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;

namespace MessageQueue.Tests.TestSupport;

/// <summary>
/// The guarded test framework's runs (<see cref="TestRun"/>): repeats, the hang guard and its report. The hang guard
/// runs on a manual clock here, so a hang is shown without waiting for one.
/// </summary>
public sealed class TestRunTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(120);

    private static Task<(decimal Seconds, Exception? Failure)> Passed() => Task.FromResult((0.5m, (Exception?)null));

    [Fact]
    public void Current_InATestOfThisAssembly_IsThatTestsRun()
    {
        TestRun? run = TestRun.Current;

        run.Should().NotBeNull("every test project runs under GuardedTestFramework (tests/Directory.Build.props)");
        run!.Test.Should().EndWith(nameof(Current_InATestOfThisAssembly_IsThatTestsRun));
        run.Runs.Should().Be(TestRun.Repeat);
        run.Run.Should().BeInRange(1, run.Runs);
    }

    [Fact]
    public async Task RunAsync_EachRun_IsCurrentInTheTestsCodeOnly()
    {
        TestRun? outer = TestRun.Current;
        var seen = new List<(string Test, int Run, int Runs)>();

        (decimal seconds, Exception? failure) = await TestRun.RunAsync("Probe.Passes", 3, Guard, new ManualTimeProvider(), async () =>
        {
            await Task.Yield();
            TestRun inner = TestRun.Current!;
            seen.Add((inner.Test, inner.Run, inner.Runs));
            return (0.5m, null);
        });

        failure.Should().BeNull();
        seconds.Should().Be(1.5m);
        seen.Should().Equal(("Probe.Passes", 1, 3), ("Probe.Passes", 2, 3), ("Probe.Passes", 3, 3));
        TestRun.Current.Should().BeSameAs(outer, "a run is current in its own code, not in its caller's");
    }

    [Fact]
    public async Task RunAsync_OneRunFails_ItsOwnFailureIsTheTestsFailure()
    {
        var failure = new InvalidOperationException("expected 1, found 2");

        (_, Exception? reported) = await TestRun.RunAsync("Probe.Fails", 1, Guard, new ManualTimeProvider(), () => Task.FromResult((0m, (Exception?)failure)));

        reported.Should().BeSameAs(failure);
    }

    [Fact]
    public async Task RunAsync_ThirdOfFiveRunsFails_StopsThere_AndSaysWhichRun()
    {
        var failure = new InvalidOperationException("expected 1, found 2");
        int calls = 0;

        (decimal seconds, Exception? reported) = await TestRun.RunAsync("Probe.FailsOnce", 5, Guard, new ManualTimeProvider(), () =>
            ++calls == 3 ? Task.FromResult((0.5m, (Exception?)failure)) : Passed());

        calls.Should().Be(3, "the first failing run ends the runs");
        seconds.Should().Be(1.5m);
        reported.Should().BeOfType<RepeatedRunFailedException>()
            .Which.Message.Should().Be("Run 3 of 5 failed; the 2 runs before it passed.");
        reported!.InnerException.Should().BeSameAs(failure);
    }

    [Fact]
    public async Task RunAsync_RunThatNeverFinishes_FailsWithWhatItWaitedFor_AndOpensItsGates()
    {
        var clock = new ManualTimeProvider();
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        TestGate? gate = null;
        Task? handler = null;
        int calls = 0;
        try
        {
            // Everything up to the wait that never ends runs synchronously, so the hang guard's timer is armed on
            // the manual clock by the time RunAsync returns.
            Task<(decimal Seconds, Exception? Failure)> runs = TestRun.RunAsync("Probe.Hangs", 2, Guard, clock, async () =>
            {
                calls++;
                gate = new TestGate("the probe's handler");
                handler = gate.PassAsync();
                await Task.CompletedTask.OrHang("the subscription to attach");
                await never.Task.OrHang("a signal that never comes");
                return (0m, null);
            });
            runs.IsCompleted.Should().BeFalse();

            clock.Advance(Guard);

            (decimal seconds, Exception? failure) = await runs.OrHang("the hang guard to end the run");
            seconds.Should().Be(120m);
            calls.Should().Be(1, "a hung run ends the runs");
            failure.Should().BeOfType<TestHungException>().Which.Message.Should().Be(
                "Hung: Probe.Hangs did not finish within 120 s (run 1 of 2)." + Environment.NewLine +
                "Waiting for: 'a signal that never comes'." + Environment.NewLine +
                "Gates still closed: 'the probe's handler' (1 inside)." + Environment.NewLine +
                "Last signal that arrived: 'the subscription to attach'.");
            gate!.IsOpen.Should().BeTrue("the gates of a hung run are opened so that what it left waiting can finish");
            await handler!.OrHang("the handler held at the gate to pass once it opened");
        }
        finally
        {
            never.TrySetResult(); // lets the abandoned run finish
        }
    }

    [Fact]
    public void DescribeHang_NothingNamed_SaysTheHangIsInAnUnguardedAwait()
    {
        string report = TestRun.Current!.DescribeHang();

        report.Should().Contain("Waiting for: no signal the test named, so the hang is in an await without a hang guard");
        report.Should().EndWith("No signal had arrived yet.");
    }

    [Theory]
    [InlineData(null, 1)]
    [InlineData("", 1)]
    [InlineData(" ", 1)]
    [InlineData("1", 1)]
    [InlineData("3000", 3000)]
    public void ReadRepeat_UnsetOrAWholeNumber_IsTheRunCount(string? value, int expected) =>
        TestRun.ReadRepeat(value).Should().Be(expected);

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("x")]
    [InlineData("1.5")]
    public void ReadRepeat_NotAWholeNumberOfOneOrMore_IsRefusedNamingTheVariable(string value) =>
        FluentActions.Invoking(() => TestRun.ReadRepeat(value)).Should().Throw<InvalidOperationException>()
            .WithMessage($"MQ_TEST_REPEAT is '{value}': set it to a whole number of runs, 1 or more, or leave it unset to run each test once.");
}
