using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// Limits retention (<see cref="RetentionPolicy.Limits"/>, and every dead-letter queue): an ordered log of
/// retained messages, bounded by count and age, and subscriptions that start from a point in it.
/// </summary>
/// <remarks>
/// Publishing into the log happens under the queue's lock, so the log and every subscription see the
/// same order. That is slower than the interest path's per-subscription locking, and it is what a
/// replayable log needs.
/// </remarks>
internal sealed partial class BrokerQueue<T>
{
    private ITimer? _ageTimer;
    private long _ageDue; // UTC ticks the age timer fires at; 0 when it is not armed

    /// <summary>A publish into a Limits queue: DropOldest evicts the oldest message to make room, Reject refuses.</summary>
    private bool TryPublishToLog(in Draft draft, out PublishReceipt receipt)
    {
        if (draft.DueAt != 0)
        {
            Names.ValidateEvent(draft.Event, "eventName");
            receipt = Schedule(draft);
            return true;
        }

        return TryAppend(draft, out receipt, force: _overflow == OverflowPolicy.DropOldest);
    }

    /// <summary>
    /// Appends to the log, routed to every matching subscription. When the log is full it evicts its oldest
    /// message if <paramref name="force"/>, and otherwise refuses.
    /// </summary>
    private bool TryAppend(in Draft draft, out PublishReceipt receipt, bool force)
    {
        Debug.Assert(_log is not null);
        List<MessageDroppedEventArgs>? dropped = null;
        long timestamp = _time.GetUtcNow().UtcTicks;
        SubscriptionState<T>[] route;
        lock (_gate)
        {
            if (_log.Count >= _maxMessages && !force)
            {
                receipt = default;
                return false;
            }

            while (_log.Count >= _maxMessages)
            {
                EvictLogHeadLocked(ref dropped);
            }

            route = draft.Target is { IsDeleted: false } target ? [target] : ComputeRouteLocked(draft.Event).Subscriptions;
            foreach (SubscriptionState<T> subscription in route)
            {
                subscription.Gate.Enter();
            }

            Message<T> message;
            try
            {
                message = CreateMessage(draft, timestamp);
                _log.Enqueue(message);
                if (route.Length > 0)
                {
                    message.InitializeReferences(route.Length);
                    foreach (SubscriptionState<T> subscription in route)
                    {
                        subscription.EnqueueLocked(message);
                    }
                }
            }
            finally
            {
                for (int i = route.Length - 1; i >= 0; i--)
                {
                    route[i].Gate.Exit();
                }
            }

            if (_maxAge != 0)
            {
                ArmAgeLocked(timestamp);
            }

            receipt = new PublishReceipt(Name, message.Id, message.Sequence);
        }

        RaiseDropped(dropped);
        foreach (SubscriptionState<T> subscription in route)
        {
            FinishPendingWork(subscription);
        }

        return true;
    }

    /// <summary>The oldest retained message goes, from the log and from every backlog that still waits on it.</summary>
    private void EvictLogHeadLocked(ref List<MessageDroppedEventArgs>? dropped)
    {
        Debug.Assert(_log is not null);
        Message<T> head = _log.Dequeue();

        // Also drops anything older still waiting: a message evicted from the log while in flight
        // that came back afterwards (nacked, or its consumer left). Otherwise it would block the
        // head of its backlog, and the backlog would grow past the log's bound.
        if (!DropWaitingUpToLocked(head.Sequence, DropReason.RetentionLimit, ref dropped))
        {
            (dropped ??= []).Add(new MessageDroppedEventArgs(Name, null, head.Id, head.Sequence, head.Event, DropReason.RetentionLimit));
        }

        Interlocked.Increment(ref _dropped);
    }

    /// <summary>Makes sure the age timer fires when the oldest message gets too old. Called under _gate.</summary>
    private void ArmAgeLocked(long now)
    {
        Debug.Assert(_log is not null && _maxAge != 0);
        if (!_log.TryPeek(out Message<T>? oldest))
        {
            return;
        }

        long due = oldest.TimestampTicks + _maxAge;
        if (_ageDue != 0 && _ageDue <= due)
        {
            return;
        }

        _ageDue = due;
        if (_ageTimer is null)
        {
            using (ExecutionContext.SuppressFlow())
            {
                _ageTimer = _time.CreateTimer(static state => ((BrokerQueue<T>)state!).EvictAged(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        _ageTimer.Change(TimeSpan.FromTicks(Math.Max(0, due - now)), Timeout.InfiniteTimeSpan);
    }

    /// <summary>The age timer: evicts every message older than MaxAge.</summary>
    private void EvictAged()
    {
        long now = _time.GetUtcNow().UtcTicks;
        List<MessageDroppedEventArgs>? dropped = null;
        lock (_gate)
        {
            Debug.Assert(_log is not null);
            _ageDue = 0;
            while (_log.TryPeek(out Message<T>? oldest) && oldest.TimestampTicks + _maxAge <= now)
            {
                EvictLogHeadLocked(ref dropped);
            }

            ArmAgeLocked(now);
        }

        RaiseDropped(dropped);
    }

    /// <summary>
    /// A subscription just created with a start position other than New: it gets the retained messages
    /// from that position on, in order. Called under _gate, before the subscription is visible to publishers.
    /// </summary>
    private void StartFromLogLocked(SubscriptionState<T> subscription, StartPosition start)
    {
        Debug.Assert(_log is not null);
        lock (subscription.Gate)
        {
            foreach (Message<T> message in _log)
            {
                if (start.Includes(message.Sequence, message.TimestampTicks) && subscription.Matches(message.Event))
                {
                    message.AddReference();
                    subscription.EnqueueLocked(message);
                }
            }
        }
    }
}
