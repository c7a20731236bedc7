namespace MessageQueue.Cli.Tests;

/// <summary>
/// System time, except that every timer fires at once, synchronously, when it is created. A time limit
/// built on it has already expired when the code under test first looks at it, which makes the
/// timeout path deterministic without waiting for anything.
/// </summary>
internal sealed class ImmediateTimeProvider : TimeProvider
{
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if (dueTime != Timeout.InfiniteTimeSpan)
        {
            callback(state);
        }

        return new SpentTimer();
    }

    private sealed class SpentTimer : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => false;

        public void Dispose()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
