using FluentAssertions;
using Xunit;

namespace MessageQueue.Testing.Tests.Doubles;

/// <summary>The public manual clock, for users' own time-based code.</summary>
public sealed class ManualTimeProviderTests
{
    [Fact]
    public async Task Delay_CompletesWhenTheClockReachesIt_NotBefore()
    {
        var clock = new ManualTimeProvider();
        Task delay = Task.Delay(TimeSpan.FromMinutes(5), clock);

        clock.Advance(TimeSpan.FromMinutes(4));
        delay.IsCompleted.Should().BeFalse();
        clock.Advance(TimeSpan.FromMinutes(1));
        await delay;
        clock.GetUtcNow().Should().Be(ManualTimeProvider.DefaultStart.AddMinutes(5));
    }

    [Fact]
    public void Timers_FireInDueOrder_WithTheClockAtTheirDueTime()
    {
        var clock = new ManualTimeProvider(new DateTimeOffset(2030, 6, 1, 12, 0, 0, TimeSpan.FromHours(2)));
        var fired = new List<(string, DateTimeOffset)>();
        using ITimer late = clock.CreateTimer(_ => fired.Add(("late", clock.GetUtcNow())), null, TimeSpan.FromSeconds(30), Timeout.InfiniteTimeSpan);
        using ITimer periodic = clock.CreateTimer(_ => fired.Add(("tick", clock.GetUtcNow())), null, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10));

        clock.ActiveTimers.Should().Be(2);
        clock.NextTimerDue.Should().Be(new DateTimeOffset(2030, 6, 1, 10, 0, 10, TimeSpan.Zero));
        clock.Advance(TimeSpan.FromSeconds(35));

        DateTimeOffset start = new(2030, 6, 1, 10, 0, 0, TimeSpan.Zero);
        fired.Should().Equal(("tick", start.AddSeconds(10)), ("tick", start.AddSeconds(20)), ("late", start.AddSeconds(30)), ("tick", start.AddSeconds(30)));
        clock.GetUtcNow().Should().Be(start.AddSeconds(35));
        clock.LocalTimeZone.Should().Be(TimeZoneInfo.Utc);
    }

    [Fact]
    public void CancellationTokenSource_OnTheClock_CancelsWhenItMoves()
    {
        var clock = new ManualTimeProvider();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3), clock);

        clock.Advance(TimeSpan.FromSeconds(2));
        timeout.IsCancellationRequested.Should().BeFalse();
        clock.SetUtcNow(ManualTimeProvider.DefaultStart.AddSeconds(3));
        timeout.IsCancellationRequested.Should().BeTrue();
    }

    [Fact]
    public void DisposedTimer_NeverFires_AndElapsedTimeIsExact()
    {
        var clock = new ManualTimeProvider();
        int fired = 0;
        ITimer timer = clock.CreateTimer(_ => fired++, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        long started = clock.GetTimestamp();
        timer.Dispose();

        clock.Advance(TimeSpan.FromSeconds(5));
        fired.Should().Be(0);
        timer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan).Should().BeFalse();
        clock.GetElapsedTime(started).Should().Be(TimeSpan.FromSeconds(5));
        clock.ActiveTimers.Should().Be(0);
    }
}
