using MessageQueue.Persistence;

namespace MessageQueue;

/// <summary>Delayed delivery: messages published with DeliverAfter or NotBefore wait here until they are due.</summary>
internal sealed partial class BrokerQueue<T>
{
    // Under _gate. Ordered by due time, then by arrival, so equal due times keep publish order.
    private readonly PriorityQueue<Draft, (long DueAt, long Arrival)> _scheduled = new();
    private long _scheduledArrivals;
    private ITimer? _scheduleTimer;
    private long _scheduleDue; // UTC ticks the timer fires at; 0 when it is not armed

    /// <summary>
    /// Holds an admitted draft (it already counts against the bound) until it is due; it gets its
    /// sequence and its route when it enters the queue.
    /// </summary>
    private PublishReceipt Schedule(in Draft draft, out long ticket)
    {
        if (_writer is not null)
        {
            return StageScheduled(draft, out ticket);
        }

        ticket = 0;
        return Hold(draft);
    }

    /// <summary>Puts an admitted draft in the schedule (in memory).</summary>
    private PublishReceipt Hold(in Draft draft)
    {
        long now = _time.GetUtcNow().UtcTicks;
        lock (_gate)
        {
            if (_closed)
            {
                if (_log is null)
                {
                    FreeDepth();
                }

                throw _broker.CreateDisposedException();
            }

            _scheduled.Enqueue(draft, (draft.DueAt, ++_scheduledArrivals));
            ArmScheduleLocked(draft.DueAt, now);

            // Reported after the timer is armed, so a harness that moves its clock on this signal finds it due.
            _observer?.Scheduled(1);
        }

        return new PublishReceipt(Name, draft.Id, 0);
    }

    /// <summary>Makes sure the timer fires no later than <paramref name="dueAt"/>. Called under _gate.</summary>
    private void ArmScheduleLocked(long dueAt, long now)
    {
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
        List<Draft>? due = null;
        lock (_gate)
        {
            _scheduleDue = 0;
            while (_scheduled.TryPeek(out Draft draft, out (long DueAt, long Arrival) at) && at.DueAt <= now)
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

        foreach (Draft draft in due)
        {
            try
            {
                ReleaseHeld(draft);
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
                _observer?.Scheduled(-1);
            }
        }
    }

    /// <summary>A held message is due: it enters the queue, or is dropped (counted) when it cannot.</summary>
    private void ReleaseHeld(in Draft draft)
    {
        if (_log is not null)
        {
            // Limits retention: the log makes room by its own policy (a full Reject queue drops it, counted).
            if (!TryAppend(draft, out _, force: _overflow != OverflowPolicy.Reject, out _))
            {
                _writer?.TryPost(StoreOperation.Unschedule(Name, draft.Id), _flush);
                Interlocked.Increment(ref _dropped);
                _broker.RaiseMessageDropped([new MessageDroppedEventArgs(Name, null, draft.Id, 0, draft.Event, DropReason.QueueOverflow)]);
                if (_deadLetterDrops)
                {
                    DeadLetter(new Message<T>(draft.Id, Name, draft.Event, draft.Payload, 0, _time.GetUtcNow().UtcTicks, draft.Headers, draft.ExpiresAt), 0, DeadLetterReasons.Overflow, null, null, null, null);
                }
            }

            return;
        }

        // Each holds a unit of depth from its publish. Routed now: subscriptions made while it
        // waited receive it. An expired one is routed too, and expires where it would be read.
        Route route = GetRoute(draft.Event);
        if (route.Subscriptions.Length == 0)
        {
            _writer?.TryPost(StoreOperation.Unschedule(Name, draft.Id), _flush);
            FreeDepth();
            PublishUnrouted(draft);
        }
        else
        {
            Deliver(route, draft, out _);
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
            _observer?.Scheduled(-count);
        }
        for (int i = 0; _log is null && i < count; i++)
        {
            FreeDepth();
        }
    }
}
