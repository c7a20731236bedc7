using System.Diagnostics;

namespace MessageQueue;

/// <summary>Delayed delivery: messages published with DeliverAfter or NotBefore wait here until they are due.</summary>
internal sealed partial class BrokerQueue<T>
{
    // Under _gate. Ordered by due time, then by arrival, so equal due times keep publish order.
    private readonly PriorityQueue<Draft<T>, (long DueAt, long Arrival)> _scheduled = new();
    private long _scheduledArrivals;
    private ITimer? _scheduleTimer;
    private long _scheduleDue; // UTC ticks the timer fires at; 0 when it is not armed

    /// <summary>
    /// Holds an admitted draft (it already counts against the bound) until it is due; it gets its
    /// sequence and its route when it enters the queue.
    /// </summary>
    internal PublishReceipt Schedule(in Draft<T> draft, out long ticket) => _storage.Schedule(draft, out ticket);

    /// <summary>On the store's writer thread: a held draft was stored, and goes into the schedule, unless the queue closed meanwhile.</summary>
    internal void HoldCommitted(in Draft<T> draft)
    {
        if (_closed)
        {
            // Closed between the post and the commit: it stays stored for the next start.
            _retention.ReturnRoom();
            Interlocked.Increment(ref _abandoned);
            return;
        }

        Hold(draft);
    }

    /// <summary>Puts an admitted draft in the schedule (in memory).</summary>
    internal PublishReceipt Hold(in Draft<T> draft)
    {
        long now = _time.GetUtcNow().UtcTicks;
        lock (_gate)
        {
            if (_closed)
            {
                _retention.ReturnRoom();
                throw _broker.CreateDisposedException();
            }

            _scheduled.Enqueue(draft, (draft.DueAt, ++_scheduledArrivals));
            ArmScheduleLocked(draft.DueAt, now);

            // Reported after the timer is armed, so a harness that moves its clock on this signal finds it due.
            _events.NoteScheduled(1);
        }

        return new PublishReceipt(Name, draft.Id, 0);
    }

    /// <summary>Makes sure the timer fires no later than <paramref name="dueAt"/>. Called under _gate.</summary>
    private void ArmScheduleLocked(long dueAt, long now)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread, "called with its lock held");
        if (_scheduleDue != 0 && _scheduleDue <= dueAt)
        {
            return;
        }

        _scheduleDue = dueAt;
        if (_scheduleTimer is null)
        {
            // No execution context: the callback must not inherit the publisher's.
            using (ExecutionContext.SuppressFlow())
            {
                _scheduleTimer = _time.CreateTimer(static state => ((BrokerQueue<T>)state!).ReleaseDue(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        _scheduleTimer.Change(TimeSpan.FromTicks(Math.Max(0, dueAt - now)), Timeout.InfiniteTimeSpan);
    }

    /// <summary>The timer: every held message that is due enters the queue, in due order.</summary>
    private void ReleaseDue()
    {
        long now = _time.GetUtcNow().UtcTicks;
        List<Draft<T>>? due = null;
        lock (_gate)
        {
            _scheduleDue = 0;
            while (_scheduled.TryPeek(out Draft<T> draft, out (long DueAt, long Arrival) at) && at.DueAt <= now)
            {
                _scheduled.Dequeue();
                (due ??= []).Add(draft);
            }

            if (_scheduled.TryPeek(out _, out (long DueAt, long Arrival) next))
            {
                ArmScheduleLocked(next.DueAt, now);
            }
        }

        if (due is null)
        {
            return;
        }

        foreach (Draft<T> draft in due)
        {
            try
            {
                _retention.ReleaseHeld(draft);
            }
            catch (Exception error) when (error is MessageStoreException or ObjectDisposedException or ArgumentException)
            {
                // The store failed earlier (publishers were told), the broker is shutting down, or a limit was lowered
                // since the message was held (BrokerOptions.MaxPersistedPayloadSize, say): it is abandoned, counted, and a
                // stored one stays stored for the next start. Its unit of depth was freed where the staging failed. A
                // timer callback must not throw.
                Interlocked.Increment(ref _abandoned);
            }
            finally
            {
                // After it entered the queue (and was counted as published there), never before.
                _events.NoteScheduled(-1);
            }
        }
    }

    /// <summary>
    /// At shutdown, held messages go with the in-memory broker: counted as abandoned, their depth freed.
    /// Called from <see cref="Close"/>.
    /// </summary>
    private void AbandonScheduled()
    {
        int count;
        lock (_gate)
        {
            count = _scheduled.Count;
            _scheduled.Clear();
            _scheduleDue = 0;
            _scheduleTimer?.Dispose();
        }

        Interlocked.Add(ref _abandoned, count);
        if (count > 0)
        {
            _events.NoteScheduled(-count);
        }
        for (int i = 0; i < count; i++)
        {
            _retention.ReturnRoom();
        }
    }
}
