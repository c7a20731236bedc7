using System.Diagnostics;

namespace MessageQueue;

/// <summary>A consumer's clock: ack deadlines and the end of nack backoffs, on one timer armed for the earliest due time.</summary>
internal sealed partial class Consumer<T>
{
    // ---------------------------------------------------------------- deadlines and backoff

    /// <summary>Makes sure the timer fires no later than <paramref name="due"/>. Called under the table's lock.</summary>
    private void ArmLocked(long due, long now)
    {
        Debug.Assert(_tableGate.IsHeldByCurrentThread, "called with its lock held");
        if (_timerDue != 0 && _timerDue <= due)
        {
            return;
        }

        _timerDue = due;
        if (_timer is null)
        {
            // No execution context: the callback must not inherit the caller's (a handler's, say).
            using (ExecutionContext.SuppressFlow())
            {
                _timer = _time.CreateTimer(static state => ((Consumer<T>)state!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        _timer.Change(ToTimeSpan(Math.Max(0, due - now)), Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// The timer: deliveries whose backoff ended go back to the subscription (ahead of everything
    /// waiting there); deliveries past their ack deadline go back too, counted as timed out. Either
    /// way a message on its last attempt is dead-lettered instead.
    /// </summary>
    private void OnTimer()
    {
        long now = _time.GetTimestamp();
        List<Unsettled>? deadLetters = null;
        lock (_state.Gate)
        {
            lock (_tableGate)
            {
                _timerDue = 0;
                if (_closed)
                {
                    return;
                }

                long next = 0;
                for (int i = 0; i < _table.Capacity; i++)
                {
                    ref PendingTable<T>.Slot slot = ref _table.At(i);
                    if (slot.Message is null || slot.Due == 0)
                    {
                        continue;
                    }

                    if (slot.Due > now)
                    {
                        next = next == 0 ? slot.Due : Math.Min(next, slot.Due);
                        continue;
                    }

                    if (!slot.Waiting)
                    {
                        _table.Counters.TimedOut++;
                        _events.NoteTimedOut(_state, slot.Message, slot.Attempt);
                    }

                    Unsettled due = FreeLocked(i, recordDelivery: true, now);
                    if (due.Deliveries >= _maxDeliveries)
                    {
                        _table.Counters.DeadLettered++;
                        (deadLetters ??= []).Add(due);
                    }
                    else
                    {
                        _state.ReturnLocked(due.Message, due.Deliveries, due.History);
                    }
                }

                if (next != 0)
                {
                    ArmLocked(next, now);
                }

                _ring.AssertInvariants(Volatile.Read(ref _settled.Value));
            }

            _state.DispatchLocked();
        }

        if (deadLetters is not null)
        {
            foreach (Unsettled deadLetter in deadLetters)
            {
                DeadLetterAfterMaxDeliveries(deadLetter);
            }
        }
    }

    private long ToTimestampUnits(TimeSpan span) => (long)(span.Ticks * ((double)_time.TimestampFrequency / TimeSpan.TicksPerSecond));

    private TimeSpan ToTimeSpan(long timestampUnits) => TimeSpan.FromTicks((long)(timestampUnits * ((double)TimeSpan.TicksPerSecond / _time.TimestampFrequency)));
}
