using FluentAssertions;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests.TestSupport;

/// <summary>The gate tests hold code under test at: it opens on Open, on Dispose, and lets a cancelled caller go.</summary>
public sealed class TestGateTests
{
    [Fact]
    public async Task PassAsync_WaitsUntilOpened()
    {
        using var gate = new TestGate("a handler");

        Task passing = gate.PassAsync();
        await gate.WaitForInside(1).OrHang("the caller to be inside");
        passing.IsCompleted.Should().BeFalse("a closed gate holds its callers");

        gate.Open();

        await passing.OrHang("the caller to pass once the gate opened");
        gate.IsOpen.Should().BeTrue();
        gate.Inside.Should().Be(0);
    }

    [Fact]
    public async Task Dispose_OpensTheGate_SoAFailedTestDoesNotLeaveItsHandlerWaiting()
    {
        Task passing;
        using (var gate = new TestGate("a handler"))
        {
            passing = gate.PassAsync();
            passing.IsCompleted.Should().BeFalse();
        }

        await passing.OrHang("the caller to pass once the gate was disposed");
    }

    [Fact]
    public async Task PassAsync_CallersTokenCancelled_LeavesTheGateClosed()
    {
        using var gate = new TestGate("a handler");
        using var cancellation = new CancellationTokenSource();

        Task passing = gate.PassAsync(cancellation.Token);
        await cancellation.CancelAsync();

        await FluentActions.Awaiting(() => passing).Should().ThrowAsync<OperationCanceledException>();
        gate.IsOpen.Should().BeFalse();
        gate.Inside.Should().Be(0);
        gate.Arrivals.Should().Be(1);
    }

    [Fact]
    public async Task WaitForArrivals_AndWaitForInside_CompleteWhenReached_BeforeOrAfterTheCall()
    {
        using var gate = new TestGate("handlers");
        Task first = gate.PassAsync();
        Task twoArrived = gate.WaitForArrivals(2);
        Task twoInside = gate.WaitForInside(2);

        gate.WaitForArrivals(1).IsCompleted.Should().BeTrue("one caller has arrived already");
        twoArrived.IsCompleted.Should().BeFalse();
        Task second = gate.PassAsync();

        await Task.WhenAll(twoArrived, twoInside).OrHang("two callers to arrive and wait together");
        gate.MaxInside.Should().Be(2);
        gate.Open();
        await Task.WhenAll(first, second).OrHang("both callers to pass");
        gate.Arrivals.Should().Be(2);
        gate.Inside.Should().Be(0);
        gate.MaxInside.Should().Be(2);
    }
}
