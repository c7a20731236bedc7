using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// <see cref="RetentionPolicy.Limits"/> (and every dead-letter queue): an ordered log of retained messages, bounded by
/// count and age, kept whether or not anyone read them, and subscriptions that start from a point in it.
/// </summary>
/// <remarks>
/// Appending to the log happens under the queue's lock, so the log and every subscription see the same order. That is
/// slower than interest retention's per-subscription locking, and it is what a replayable log needs. Acks free no room:
/// only eviction (the count bound, the age bound, DropOldest) does.
/// </remarks>
internal sealed class LimitsRetention<T> : QueueRetention<T>
{
    // Under the queue's lock: the retained messages, in sequence order.
    private readonly Queue<Message<T>> _log = new();
    private readonly int _maxMessages;
    private readonly long _maxAge; // ticks; 0 for no limit

    // Durable queues: messages posted to the store but not yet in the log (under the queue's lock), so the bound counts them.
    private int _staged;

    private ITimer? _ageTimer;
    private long _ageDue; // UTC ticks the age timer fires at; 0 when it is not armed

    public LimitsRetention(BrokerQueue<T> queue, QueueAdmission<T> admission, int maxMessages, TimeSpan maxAge)
        : base(queue, admission)
    {
        _maxMessages = maxMessages;
        _maxAge = maxAge == Timeout.InfiniteTimeSpan ? 0 : maxAge.Ticks;
    }

    public override RetentionPolicy Policy => RetentionPolicy.Limits;

    /// <summary>The retained messages. Read under the queue's lock for an exact count.</summary>
    public override int Depth => _log.Count;

    // ---------------------------------------------------------------- publish

    public override bool TryPublishNow(in Draft<T> draft, out PublishReceipt receipt, out long ticket)
    {
        // Before anything is evicted or stored: a refused publish changes nothing.
        Queue.Routes.ValidateEvent(draft.Event);
        if (draft.DueAt != 0)
        {
            receipt = Queue.Schedule(draft, out ticket);
            return true;
        }

        // Full: DropOldest lets the append evict the oldest message; Reject refuses.
        return TryAppend(draft, out receipt, evict: false, out ticket)
            || (Admission.TryMakeRoom(this) && TryAppend(draft, out receipt, evict: true, out ticket));
    }

    public override void ReleaseHeld(in Draft<T> draft)
    {
        // The log makes room by the queue's policy; a full Reject queue drops the held message, counted.
        if (TryAppend(draft, out _, evict: false, out _) || (Admission.TryMakeRoom(this) && TryAppend(draft, out _, evict: true, out _)))
        {
            return;
        }

        Queue.StoreUnscheduled(draft.Id);
        Queue.CountDropped();
        Queue.Events.Dropped(new MessageDroppedEventArgs(Queue.Name, null, draft.Id, 0, draft.Event, DropReason.QueueOverflow));
        Queue.DeadLetterHeldDrop(draft);
    }

    /// <summary>Appends to the log: the log evicts its oldest message to make room when <paramref name="evict"/>, and otherwise refuses when full.</summary>
    /// <param name="draft">The message.</param>
    /// <param name="receipt">Its receipt.</param>
    /// <param name="evict">Whether a full log evicts its oldest message (true) or refuses (false).</param>
    /// <param name="ticket">The store ticket of a durable queue; 0 otherwise.</param>
    public bool TryAppend(in Draft<T> draft, out PublishReceipt receipt, bool evict, out long ticket) =>
        Queue.Storage.TryAppendToLog(this, draft, evict, out receipt, out ticket);

    /// <summary>An in-memory queue: the message goes into the log now.</summary>
    public bool TryAppendNow(in Draft<T> draft, bool evict, out PublishReceipt receipt)
    {
        long timestamp = Queue.TimeProvider.GetUtcNow().UtcTicks;
        lock (Queue.Gate)
        {
            if (_log.Count >= _maxMessages && !evict)
            {
                receipt = default;
                return false;
            }
        }

        Message<T> message = Append(draft, timestamp, existing: null);
        receipt = new PublishReceipt(Queue.Name, message.Id, message.Sequence);
        return true;
    }

    /// <summary>
    /// A durable queue: one more message is on its way to the store and into the log after its commit
    /// (<see cref="AppendCommitted"/>), and the bound counts it already. False when the log is full and may not evict.
    /// </summary>
    public bool TryStage(bool evict)
    {
        lock (Queue.Gate)
        {
            if (_log.Count + _staged >= _maxMessages && !evict)
            {
                return false;
            }

            _staged++;
            return true;
        }
    }

    /// <summary>On the store's writer thread: a staged message was committed, and goes into the log.</summary>
    public void AppendCommitted(Message<T> message, SubscriptionState<T>? target)
    {
        Unstage();
        Append(new Draft<T> { Target = target }, 0, message);
    }

    /// <summary>A staged message will not come: its store post or commit failed.</summary>
    public void Unstage()
    {
        lock (Queue.Gate)
        {
            _staged--;
        }
    }

    /// <summary>
    /// Appends a new message (from <paramref name="draft"/>), or an <paramref name="existing"/> one the store just
    /// committed, to the log, evicting the oldest past the bound, and routes it to every matching subscription (for an
    /// existing one, those created before its sequence). Called without any lock.
    /// </summary>
    private Message<T> Append(in Draft<T> draft, long timestamp, Message<T>? existing)
    {
        List<MessageDroppedEventArgs>? dropped = null;
        SubscriptionState<T>[] route;
        Message<T> message;
        lock (Queue.Gate)
        {
            while (_log.Count >= _maxMessages)
            {
                EvictHeadLocked(ref dropped);
            }

            string eventName = existing?.Event ?? draft.Event;
            route = draft.Target is { IsDeleted: false } target ? [target] : Queue.Routes.GetLocked(eventName).Subscriptions;
            if (existing is not null)
            {
                route = Array.FindAll(route, s => s.StartAfter < existing.Sequence);
            }

            BrokerQueue<T>.EnterAll(route);
            try
            {
                message = existing ?? Queue.CreateMessage(draft, timestamp);
                _log.Enqueue(message);
                Queue.Events.NoteEntering(Queue, message, route.Length);
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
                BrokerQueue<T>.ExitAll(route);
            }

            if (_maxAge != 0)
            {
                ArmAgeLocked(message.TimestampTicks);
            }
        }

        Queue.Events.Sent(Queue.Name, Queue.IsDeadLetterQueue, message.Event);
        Queue.Events.Dropped(dropped);
        foreach (SubscriptionState<T> subscription in route)
        {
            Queue.FinishPendingWork(subscription);
        }

        return message;
    }

    // ---------------------------------------------------------------- eviction

    /// <summary>The log evicts as it appends (<see cref="TryAppend"/> with evict), under the queue's lock: nothing to do before.</summary>
    public override void MakeRoomByEvicting()
    {
    }

    /// <summary>The oldest retained message goes, from the log and from every backlog that still waits on it.</summary>
    private void EvictHeadLocked(ref List<MessageDroppedEventArgs>? dropped)
    {
        Debug.Assert(Queue.Gate.IsHeldByCurrentThread);
        Message<T> head = _log.Dequeue();

        // Also drops anything older still waiting: a message evicted from the log while in flight
        // that came back afterwards (nacked, or its consumer left). Otherwise it would block the
        // head of its backlog, and the backlog would grow past the log's bound.
        if (!Queue.DropWaitingUpToLocked(head.Sequence, DropReason.RetentionLimit, ref dropped))
        {
            (dropped ??= []).Add(new MessageDroppedEventArgs(Queue.Name, null, head.Id, head.Sequence, head.Event, DropReason.RetentionLimit));
        }

        Queue.CountDropped();
        Queue.StoreRemoved(head.Sequence);
    }

    /// <summary>Makes sure the age timer fires when the oldest message gets too old. Called under the queue's lock.</summary>
    private void ArmAgeLocked(long now)
    {
        Debug.Assert(Queue.Gate.IsHeldByCurrentThread && _maxAge != 0);
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
                _ageTimer = Queue.TimeProvider.CreateTimer(static state => ((LimitsRetention<T>)state!).EvictAged(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        _ageTimer.Change(TimeSpan.FromTicks(Math.Max(0, due - now)), Timeout.InfiniteTimeSpan);
    }

    /// <summary>The age timer: evicts every message older than MaxAge.</summary>
    private void EvictAged()
    {
        long now = Queue.TimeProvider.GetUtcNow().UtcTicks;
        List<MessageDroppedEventArgs>? dropped = null;
        lock (Queue.Gate)
        {
            _ageDue = 0;
            while (_log.TryPeek(out Message<T>? oldest) && oldest.TimestampTicks + _maxAge <= now)
            {
                EvictHeadLocked(ref dropped);
            }

            ArmAgeLocked(now);
        }

        Queue.Events.Dropped(dropped);
    }

    // ---------------------------------------------------------------- room

    /// <summary>A message stays in the log until it is evicted, whoever settled it.</summary>
    public override bool LastReleased() => false;

    /// <summary>The log counts itself; no room was reserved.</summary>
    public override void ReturnRoom()
    {
    }

    /// <summary>The log counts itself; no room is reserved.</summary>
    public override void ForceRoom()
    {
    }

    // ---------------------------------------------------------------- subscriptions

    public override void ValidateStart(StartPosition start, string paramName)
    {
    }

    /// <summary>
    /// A subscription just created: it gets the retained messages from <paramref name="start"/> on, in order. Called
    /// under the queue's lock, before the subscription is visible to publishers.
    /// </summary>
    /// <returns>The sequence the subscription starts after: one before the first retained message it got, or the last sequence if it got none.</returns>
    public override long StartLocked(SubscriptionState<T> subscription, StartPosition start)
    {
        Debug.Assert(Queue.Gate.IsHeldByCurrentThread);
        long startAfter = Queue.LastSequence;
        if (start.IsNew)
        {
            return startAfter;
        }

        lock (subscription.Gate)
        {
            foreach (Message<T> message in _log)
            {
                if (start.Includes(message.Sequence, message.TimestampTicks))
                {
                    startAfter = Math.Min(startAfter, message.Sequence - 1);
                    if (subscription.Matches(message.Event))
                    {
                        Queue.Events.NoteReferenced(1);
                        message.AddReference();
                        subscription.EnqueueLocked(message);
                    }
                }
            }
        }

        return startAfter;
    }

    // ---------------------------------------------------------------- recovery

    public override bool Recover(Message<T> message, int holders)
    {
        lock (Queue.Gate)
        {
            _log.Enqueue(message);
        }

        return true;
    }

    public override void Recovered()
    {
        if (_maxAge != 0)
        {
            lock (Queue.Gate)
            {
                ArmAgeLocked(Queue.TimeProvider.GetUtcNow().UtcTicks);
            }
        }
    }

    // ---------------------------------------------------------------- dead-letter replay

    /// <summary>On a dead-letter queue: the oldest retained dead letters that match, up to a count.</summary>
    public List<Message<T>> Peek(TopicFilter? filter, int maxMessages)
    {
        var found = new List<Message<T>>();
        lock (Queue.Gate)
        {
            foreach (Message<T> message in _log)
            {
                if (found.Count == maxMessages)
                {
                    break;
                }

                if (filter is null || filter.Matches(message.Event))
                {
                    found.Add(message);
                }
            }
        }

        return found;
    }

    /// <summary>Whether <paramref name="message"/> is still retained.</summary>
    public bool Contains(Message<T> message)
    {
        lock (Queue.Gate)
        {
            return _log.Contains(message);
        }
    }

    /// <summary>On a dead-letter queue: removes a replayed dead letter from the log and from every backlog that still waits on it.</summary>
    public void Remove(Message<T> message)
    {
        int released = 0;
        lock (Queue.Gate)
        {
            int before = _log.Count;
            Message<T>[] kept = [.. _log.Where(m => m != message)];
            if (kept.Length == before)
            {
                return;
            }

            _log.Clear();
            foreach (Message<T> m in kept)
            {
                _log.Enqueue(m);
            }

            foreach (SubscriptionState<T> subscription in Queue.Routes.Subscriptions)
            {
                if (subscription.RemoveWaiting(message))
                {
                    message.Release();
                    released++;
                }
            }

            Queue.StoreRemoved(message.Sequence);
            Queue.CountReplayed();
        }

        for (int i = 0; i < released; i++)
        {
            Queue.Events.Released(Queue.Name, message);
        }
    }
}
