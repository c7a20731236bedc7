namespace MessageQueue.Testing;

/// <summary>
/// A <see cref="TimeProvider"/> whose clock moves only when you move it. Timers created through it (by the broker,
/// by <see cref="Task.Delay(TimeSpan, TimeProvider)"/>, by <see cref="CancellationTokenSource(TimeSpan, TimeProvider)"/>,
/// or by your own code) fire during <see cref="Advance"/> or <see cref="SetUtcNow"/>, in due order, on the calling thread.
/// </summary>
/// <remarks>
/// <para>Use it for your own time-based code as well as for the broker's: give the same instance to both, and
/// a test can move an hour forward in a microsecond, with nothing left to chance.</para>
/// <para>The local time zone is UTC, and timestamps (<see cref="GetTimestamp"/>) are UTC ticks.</para>
/// </remarks>
/// <example>
/// <code>
/// var clock = new ManualTimeProvider();
/// Task delay = Task.Delay(TimeSpan.FromMinutes(5), clock);
/// clock.Advance(TimeSpan.FromMinutes(5));   // the delay completes here
/// </code>
/// </example>
public sealed class ManualTimeProvider : TimeProvider
{
    /// <summary>The time a <see cref="ManualTimeProvider"/> starts at unless told otherwise: 2026-01-01T00:00:00Z.</summary>
    public static readonly DateTimeOffset DefaultStart = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly Lock _gate = new();
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now;

    /// <summary>Initializes a clock that starts at <see cref="DefaultStart"/>.</summary>
    public ManualTimeProvider()
        : this(DefaultStart)
    {
    }

    /// <summary>Initializes a clock that starts at <paramref name="start"/>.</summary>
    /// <param name="start">The starting time; converted to UTC.</param>
    public ManualTimeProvider(DateTimeOffset start) => _now = start.ToUniversalTime();

    /// <inheritdoc/>
    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    /// <inheritdoc/>
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>Gets how many timers are armed: created, not disposed, and due at some time.</summary>
    public int ActiveTimers
    {
        get
        {
            lock (_gate)
            {
                return ActiveTimersLocked();
            }
        }
    }

    /// <summary>Gets when the next armed timer is due, or <see langword="null"/> when none is armed.</summary>
    public DateTimeOffset? NextTimerDue
    {
        get
        {
            lock (_gate)
            {
                return EarliestLocked(DateTimeOffset.MaxValue)?.DueAt;
            }
        }
    }

    /// <inheritdoc/>
    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
        {
            return _now;
        }
    }

    /// <inheritdoc/>
    public override long GetTimestamp() => GetUtcNow().UtcTicks;

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new ManualTimer(this, callback, state);
        lock (_gate)
        {
            _timers.Add(timer);
        }

        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>
    /// Moves the clock forward by <paramref name="delta"/>, firing every timer that falls due on the way, in due order,
    /// with the clock set to each one's due time while it runs.
    /// </summary>
    /// <param name="delta">How far to move; zero fires the timers that are due now.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delta"/> is negative: a clock never goes back.</exception>
    public void Advance(TimeSpan delta)
    {
        if (delta < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(delta), delta, "A manual clock only moves forward; pass a delta of zero or more.");
        }

        DateTimeOffset target;
        lock (_gate)
        {
            target = _now + delta;
        }

        MoveTo(target);
    }

    /// <summary>Sets the clock to <paramref name="value"/>, firing every timer that falls due on the way, as <see cref="Advance"/> does.</summary>
    /// <param name="value">The new time; not earlier than the current time.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is earlier than the current time.</exception>
    public void SetUtcNow(DateTimeOffset value)
    {
        lock (_gate)
        {
            if (value < _now)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, $"A manual clock only moves forward; it is at {_now:O} already.");
            }
        }

        MoveTo(value.ToUniversalTime());
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        lock (_gate)
        {
            return $"{_now:O} ({ActiveTimersLocked()} timers armed)";
        }
    }

    private int ActiveTimersLocked()
    {
        int count = 0;
        foreach (ManualTimer timer in _timers)
        {
            count += timer.DueAt is null ? 0 : 1;
        }

        return count;
    }

    private void MoveTo(DateTimeOffset target)
    {
        while (true)
        {
            ManualTimer? due;
            lock (_gate)
            {
                due = EarliestLocked(target);
                if (due is null)
                {
                    // Never back: another thread may have moved the clock further meanwhile.
                    if (target > _now)
                    {
                        _now = target;
                    }

                    return;
                }

                if (due.DueAt!.Value > _now)
                {
                    _now = due.DueAt.Value;
                }

                due.Rearm();
            }

            // Outside the lock: the callback may read the clock and create or change timers.
            due.Fire();
        }
    }

    /// <summary>The armed timer due first, no later than <paramref name="limit"/>; ties go to the one created first.</summary>
    private ManualTimer? EarliestLocked(DateTimeOffset limit)
    {
        ManualTimer? earliest = null;
        foreach (ManualTimer timer in _timers)
        {
            if (timer.DueAt is { } at && at <= limit && (earliest is null || at < earliest.DueAt!.Value))
            {
                earliest = timer;
            }
        }

        return earliest;
    }

    private void Remove(ManualTimer timer)
    {
        lock (_gate)
        {
            _timers.Remove(timer);
        }
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        private TimeSpan _period;
        private bool _disposed;

        public DateTimeOffset? DueAt { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._gate)
            {
                if (_disposed)
                {
                    return false;
                }

                _period = period;
                DueAt = dueTime == Timeout.InfiniteTimeSpan ? null : owner._now + (dueTime < TimeSpan.Zero ? TimeSpan.Zero : dueTime);
                return true;
            }
        }

        /// <summary>Under the owner's lock, as the timer fires: schedules the next period, if any.</summary>
        public void Rearm() =>
            DueAt = _period == Timeout.InfiniteTimeSpan || _period <= TimeSpan.Zero ? null : DueAt + _period;

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (owner._gate)
            {
                _disposed = true;
                DueAt = null;
            }

            owner.Remove(this);
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
