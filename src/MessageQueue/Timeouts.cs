using System.Globalization;

namespace MessageQueue;

/// <summary>The range a timeout may take: what <see cref="Task.WaitAsync(TimeSpan, TimeProvider)"/> and timers accept.</summary>
internal static class Timeouts
{
    /// <summary>About 24.8 days: the longest finite timeout the broker accepts.</summary>
    public static readonly TimeSpan Max = TimeSpan.FromMilliseconds(int.MaxValue);

    /// <summary>Returns why <paramref name="value"/> is not a valid timeout, or null when it is.</summary>
    public static string? Describe(TimeSpan value, string name, bool allowZero)
    {
        if (value == Timeout.InfiniteTimeSpan)
        {
            return null;
        }

        if (value < TimeSpan.Zero || (!allowZero && value == TimeSpan.Zero))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{name} is {value}; it must be {(allowZero ? "zero or positive" : "positive")}, or Timeout.InfiniteTimeSpan to wait without limit.");
        }

        if (value > Max)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{name} is {value}; the longest finite timeout is {Max} (about 24.8 days). Use Timeout.InfiniteTimeSpan to wait without limit.");
        }

        return null;
    }
}
