using System.Diagnostics;
using MessageQueue.Persistence;

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
    private bool TryPublishToLog(in Draft draft, out PublishReceipt receipt, out long ticket)
    {
        // Before anything is evicted or stored: a refused publish changes nothing.
        ValidateEvent(draft.Event);
        if (draft.DueAt != 0)
        {
            receipt = Schedule(draft, out ticket);
            return true;
        }

        return TryAppend(draft, out receipt, force: _overflow == OverflowPolicy.DropOldest, out ticket);
    }

    /// <summary>
    /// Appends to the log, routed to every matching subscription. When the log is full it evicts its oldest
    /// message if <paramref name="force"/>, and otherwise refuses.
    /// </summary>
    private bool TryAppend(in Draft draft, out PublishReceipt receipt, bool force, out long ticket)
    {
        if (_writer is not null)
        {
            return StageToLog(draft, out receipt, force, out ticket);
        }

        ticket = 0;
        Debug.Assert(_log is not null);
        long timestamp = _time.GetUtcNow().UtcTicks;
        lock (_gate)
        {
            if (_log.Count >= _maxMessages && !force)
            {
                receipt = default;
                return false;
            }
        }

        Message<T> message = AppendToLog(draft, timestamp, existing: null);
        receipt = new PublishReceipt(Name, message.Id, message.Sequence);
        return true;
    }

    /// <summary>
    /// Appends a new message (from <paramref name="draft"/>), or an <paramref name="existing"/> one the store
    /// just committed, to the log, evicting the oldest past the bound, and routes it to every matching
    /// subscription (for an existing one, those created before its sequence). Called without any lock.
    /// </summary>
    private Message<T> AppendToLog(in Draft draft, long timestamp, Message<T>? existing)
    {
        Debug.Assert(_log is not null);
        List<MessageDroppedEventArgs>? dropped = null;
        SubscriptionState<T>[] route;
        Message<T> message;
        lock (_gate)
        {
            while (_log.Count >= _maxMessages)
            {
                EvictLogHeadLocked(ref dropped);
            }

            string eventName = existing?.Event ?? draft.Event;
            route = draft.Target is { IsDeleted: false } target ? [target] : ComputeRouteLocked(eventName).Subscriptions;
            if (existing is not null)
            {
                route = Array.FindAll(route, s => s.StartAfter < existing.Sequence);
            }

            EnterAll(route);
            try
            {
                message = existing ?? CreateMessage(draft, timestamp);
                _log.Enqueue(message);
                NotePublished(message, route.Length);
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
                ExitAll(route);
            }

            if (_maxAge != 0)
            {
                ArmAgeLocked(message.TimestampTicks);
            }
        }

        RecordSent(message);
        RaiseDropped(dropped);
        foreach (SubscriptionState<T> subscription in route)
        {
            FinishPendingWork(subscription);
        }

        return message;
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
        _writer?.TryPost(StoreOperation.Remove(Name, head.Sequence), _flush);
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
    /// <returns>The sequence the subscription starts after: one before the first retained message it got, or the last sequence if it got none.</returns>
    private long StartFromLogLocked(SubscriptionState<T> subscription, StartPosition start)
    {
        Debug.Assert(_log is not null);
        long startAfter = Volatile.Read(ref _sequence.Value);
        lock (subscription.Gate)
        {
            foreach (Message<T> message in _log)
            {
                if (start.Includes(message.Sequence, message.TimestampTicks))
                {
                    startAfter = Math.Min(startAfter, message.Sequence - 1);
                    if (subscription.Matches(message.Event))
                    {
                        _observer?.Referenced(1);
                        message.AddReference();
                        subscription.EnqueueLocked(message);
                    }
                }
            }
        }

        return startAfter;
    }
}
