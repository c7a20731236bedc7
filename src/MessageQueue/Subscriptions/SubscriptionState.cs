using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// The delivery state of one subscription: its filters, the messages waiting for a consumer, and the
/// consumers attached to it. Messages that came back (nacked, or held by a consumer that detached)
/// wait ahead of fresh ones, in sequence order, so a consumer always gets the oldest message first.
/// </summary>
/// <remarks>
/// <para><b>Locking.</b> <see cref="Gate"/> guards the backlog, the returned set, the consumer list and
/// every hand-off into a consumer's ring, which keeps each ring in sequence order. Publishers
/// take it (after the queue's lock, if any, and in subscription-id order); consumers take it only to
/// refill from a non-empty backlog, to nack, and to detach.</para>
/// <para><b>Credit.</b> A consumer has credit while it holds fewer than MaxInFlight deliveries.
/// A publisher looks at credit under <see cref="Gate"/>; a consumer frees credit without it and then
/// looks at <see cref="_waiting"/>. Both sides write, fence, then read (Dekker), so a message never
/// sits in the backlog while a consumer has room for it.</para>
/// </remarks>
internal sealed class SubscriptionState<T>
{
    private readonly BrokerQueue<T> _queue;
    private readonly TopicFilter[] _filters;
    private readonly Queue<Message<T>> _backlog = new();
    private readonly PriorityQueue<Returned, long> _returned = new();

    private Consumer<T>[] _consumers = [];
    private int _nextConsumer;

    // Exclusive subscriptions: whether the active consumer attached exclusively, and the consumers waiting
    // to take over from it (ExclusiveMode.Standby), first come first served.
    private bool _exclusiveActive;
    private readonly List<Consumer<T>> _standby = [];

    // The subscription's own bound (SubscriptionOptions.MaxBacklog; 0 for none) and what happens past it.
    private readonly int _maxBacklog;
    private readonly BacklogOverflowPolicy _backlogOverflow;

    // Work for whoever releases the locks after handing messages over: drops past the bound to release
    // and raise, or the subscription to cut loose. _hasPendingWork is the one thing publishers read.
    private List<Consumer<T>.Unsettled>? _pendingDrops;
    private bool _cutLoose;
    private volatile bool _hasPendingWork;

    // _backlog.Count + _returned.Count. Written under Gate with Interlocked (a full fence), read by
    // settling consumers without the lock.
    private PaddedCounter _waiting; // on a cache line of its own: read on every settle, written only when the backlog changes
    private bool _deleted;

    // Counters. Delivered and dropped change under Gate; the settle counters live on each consumer
    // (so that the consumer side never writes to this object) and are folded in here on detach.
    private long _delivered;
    private long _redelivered;
    private long _dropped;
    private long _handlerFailures;
    private ConsumerCounters _retired;

    public SubscriptionState(BrokerQueue<T> queue, long id, string? name, string[] filters, int maxBacklog = 0, BacklogOverflowPolicy backlogOverflow = BacklogOverflowPolicy.DropOldest)
    {
        _maxBacklog = maxBacklog;
        _backlogOverflow = backlogOverflow;
        _queue = queue;
        Id = id;
        Name = name;
        FilterTexts = filters;
        _filters = Array.ConvertAll(filters, TopicFilter.Parse);
    }

    /// <summary>Increases with creation order; publishers lock subscriptions in this order.</summary>
    public long Id { get; }

    /// <summary>The subscription's identity for snapshots and the observer: a value, holding nothing of this object.</summary>
    public SubscriptionKey Key => new(_queue.Name, Id);

    /// <summary>
    /// Durable queues: the subscription holds the messages whose sequence is greater than this, the queue's
    /// last sequence when it was created. A message staged for the store before then but committed after is
    /// not handed to it, exactly as a restart would not (<see cref="Persistence.StoredSubscription.StartAfter"/>).
    /// </summary>
    public long StartAfter { get; set; }

    // Durable queues: the highest sequence read for the first time, and the highest the store was told
    // (written by the store's writer thread only). Reads raise the first without a lock.
    private long _deliveredCursor;
    private long _storedCursor;

    /// <summary>A consumer read message <paramref name="sequence"/> for the first time (durable queues).</summary>
    public void NoteFirstDelivery(long sequence)
    {
        long seen;
        while ((seen = Volatile.Read(ref _deliveredCursor)) < sequence && Interlocked.CompareExchange(ref _deliveredCursor, sequence, seen) != seen)
        {
        }
    }

    /// <summary>On the store's writer thread: the cursor to store, if it moved since it was last stored.</summary>
    public bool TryTakeCursor(out long cursor)
    {
        cursor = Volatile.Read(ref _deliveredCursor);
        if (cursor <= _storedCursor)
        {
            return false;
        }

        _storedCursor = cursor;
        return true;
    }

    /// <summary>Recovery: a stored message that had been delivered before, waiting to be delivered again. Called with <see cref="Gate"/> held.</summary>
    public void RestoreReturnedLocked(Message<T> message, int deliveries)
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "called with its lock held");
        _returned.Enqueue(new Returned(message, deliveries, null), message.Sequence);
        Interlocked.Increment(ref _waiting.Value);
    }

    /// <summary>Recovery: the cursor read back from the store.</summary>
    public void RestoreCursor(long cursor)
    {
        _deliveredCursor = cursor;
        _storedCursor = cursor;
    }

    /// <summary>The durable name, or null for an ephemeral subscription.</summary>
    public string? Name { get; }

    public string[] FilterTexts { get; }

    public BrokerQueue<T> Queue => _queue;

    public Lock Gate { get; } = new();

    /// <summary>True once the subscription ended (or is being cut loose); publishers holding a stale route skip it. Read under <see cref="Gate"/>.</summary>
    public bool IsDeleted => _deleted || _cutLoose;

    /// <summary>True when a publisher, after releasing its locks, must call <see cref="TakePendingWork"/>.</summary>
    public bool HasPendingWork => _hasPendingWork;

    /// <summary>A message that came back to the subscription, with how many times it was delivered so far.</summary>
    private readonly record struct Returned(Message<T> Message, int Deliveries, DeliveryHistory? History);

    private static Consumer<T>.Unsettled Held(Returned returned) => new(returned.Message, returned.Deliveries, returned.History);

    public bool Matches(string eventName)
    {
        foreach (TopicFilter filter in _filters)
        {
            if (filter.Matches(eventName))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Counts a handler exception (handler form). Kept here, not per consumer, so a count made after a detach is not lost.</summary>
    public void RecordHandlerFailure() => Interlocked.Increment(ref _handlerFailures);

    public bool HasFilters(string[] filters) =>
        new HashSet<string>(FilterTexts, StringComparer.Ordinal).SetEquals(filters);

    // ---------------------------------------------------------------- delivery

    /// <summary>A newly published message, in sequence order. Called with <see cref="Gate"/> held.</summary>
    public void EnqueueLocked(Message<T> message)
    {
        Debug.Assert(Gate.IsHeldByCurrentThread && !_deleted);

        // Caught up: hand the message straight to a consumer's ring.
        if (_waiting.Value == 0 && NextConsumerWithCreditLocked() is { } consumer)
        {
            consumer.PushLocked(message, attempt: 1, history: null);
            _delivered++;
            return;
        }

        _backlog.Enqueue(message);
        Interlocked.Increment(ref _waiting.Value);

        // A consumer may have freed credit after the check above but read _waiting before the
        // increment; look again now that the increment is visible.
        DispatchLocked();
        if (_maxBacklog > 0 && _waiting.Value > _maxBacklog)
        {
            ApplyOwnBoundLocked();
        }
    }

    /// <summary>
    /// The backlog passed the subscription's own bound. DropOldest takes its oldest waiting message out;
    /// Disconnect marks it to be cut loose. Either way the caller finishes the job after releasing its locks
    /// (<see cref="TakePendingWork"/>), because releasing messages and raising events must not happen under them.
    /// </summary>
    private void ApplyOwnBoundLocked()
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "called with its lock held");
        if (_backlogOverflow == BacklogOverflowPolicy.Disconnect)
        {
            _cutLoose = true;
        }
        else
        {
            Consumer<T>.Unsettled oldest = _returned.Count > 0 ? Held(_returned.Dequeue()) : new(_backlog.Dequeue(), 0, null);
            Interlocked.Decrement(ref _waiting.Value);
            _dropped++;
            (_pendingDrops ??= []).Add(oldest);
        }

        _hasPendingWork = true;
    }

    /// <summary>Takes what <see cref="ApplyOwnBoundLocked"/> left to do: the messages dropped, and whether to cut the subscription loose.</summary>
    public (List<Consumer<T>.Unsettled>? Dropped, bool CutLoose) TakePendingWork()
    {
        lock (Gate)
        {
            List<Consumer<T>.Unsettled>? dropped = _pendingDrops;
            _pendingDrops = null;
            _hasPendingWork = false;
            return (dropped, _cutLoose && !_deleted);
        }
    }

    /// <summary>Hands waiting messages to consumers with credit, oldest first. Called with <see cref="Gate"/> held.</summary>
    public void DispatchLocked()
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "called with its lock held");
        while (_waiting.Value > 0 && NextConsumerWithCreditLocked() is { } consumer)
        {
            Message<T> message;
            int attempt;
            DeliveryHistory? history = null;
            if (_returned.Count > 0)
            {
                // Everything that came back was delivered before anything still in the backlog,
                // so returned messages always go first.
                Returned returned = _returned.Dequeue();
                message = returned.Message;
                attempt = returned.Deliveries + 1;
                history = returned.History;
            }
            else
            {
                message = _backlog.Dequeue();
                attempt = 1;
            }

            Interlocked.Decrement(ref _waiting.Value);
            consumer.PushLocked(message, attempt, history);
            _delivered++;
            if (attempt > 1)
            {
                _redelivered++;
            }
        }
    }

    private Consumer<T>? NextConsumerWithCreditLocked()
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "called with its lock held");
        Consumer<T>[] consumers = _consumers;
        if (consumers.Length == 1)
        {
            return consumers[0].HasCreditLocked() ? consumers[0] : null;
        }

        // Competing consumers: round robin over those with credit.
        for (int i = 0; i < consumers.Length; i++)
        {
            int index = (_nextConsumer + i) % consumers.Length;
            if (consumers[index].HasCreditLocked())
            {
                _nextConsumer = (index + 1) % consumers.Length;
                return consumers[index];
            }
        }

        return null;
    }

    /// <summary>True while messages wait in the backlog (or came back). Read without the lock.</summary>
    public bool HasWaiting => Volatile.Read(ref _waiting.Value) > 0;

    /// <summary>
    /// After a consumer freed credit (with a full fence), or found its ring empty: deliver what waits.
    /// Called without any lock.
    /// </summary>
    /// <returns>True when messages were waiting, so a consumer with credit may have been given some.</returns>
    public bool OnCreditFreed()
    {
        if (!HasWaiting)
        {
            return false;
        }

        lock (Gate)
        {
            DispatchLocked();
        }

        return true;
    }

    /// <summary>
    /// A message comes back (nacked, timed out, or held by a consumer that left) and waits, ahead of
    /// everything newer, to be delivered again. Called with <see cref="Gate"/> held; the caller dispatches.
    /// </summary>
    public void ReturnLocked(Message<T> message, int deliveries, DeliveryHistory? history)
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "called with its lock held");
        _returned.Enqueue(new Returned(message, deliveries, history), message.Sequence);
        Interlocked.Increment(ref _waiting.Value);
        if (Name is not null && deliveries > 0)
        {
            // Durable queues: a restart redelivers it with its attempt count kept.
            _queue.StoreDeliveries(Name, message.Sequence, deliveries);
        }
    }

    // ---------------------------------------------------------------- overflow

    /// <summary>The oldest message waiting for a consumer, or null.</summary>
    public Message<T>? PeekOldestWaiting()
    {
        lock (Gate)
        {
            if (_returned.TryPeek(out Returned returned, out _))
            {
                return returned.Message;
            }

            return _backlog.TryPeek(out Message<T>? message) ? message : null;
        }
    }

    /// <summary>
    /// Drops every waiting message whose sequence is at most <paramref name="sequence"/>. Backlogs are in
    /// sequence order, so these are always at the heads of the returned set and the backlog.
    /// </summary>
    /// <returns>The dropped messages, with how often each was delivered; the caller releases them.</returns>
    public List<Consumer<T>.Unsettled> DropWaitingUpTo(long sequence)
    {
        var dropped = new List<Consumer<T>.Unsettled>();
        lock (Gate)
        {
            while (_returned.TryPeek(out Returned returned, out long returnedSequence) && returnedSequence <= sequence)
            {
                _returned.Dequeue();
                dropped.Add(Held(returned));
            }

            while (_backlog.TryPeek(out Message<T>? head) && head.Sequence <= sequence)
            {
                dropped.Add(new(_backlog.Dequeue(), 0, null));
            }

            Interlocked.Add(ref _waiting.Value, -dropped.Count);
            _dropped += dropped.Count;
        }

        return dropped;
    }

    /// <summary>Removes one waiting message wherever it is in line (a replayed dead letter). Not on the hot path: O(n).</summary>
    /// <returns>True when the message was waiting here; the caller releases it.</returns>
    public bool RemoveWaiting(Message<T> message)
    {
        lock (Gate)
        {
            bool removed = false;
            if (_returned.UnorderedItems.Any(item => item.Element.Message == message))
            {
                var others = _returned.UnorderedItems.Where(item => item.Element.Message != message).ToList();
                _returned.Clear();
                _returned.EnqueueRange(others);
                removed = true;
            }
            else if (_backlog.Contains(message))
            {
                Message<T>[] others = [.. _backlog.Where(m => m != message)];
                _backlog.Clear();
                foreach (Message<T> other in others)
                {
                    _backlog.Enqueue(other);
                }

                removed = true;
            }

            if (removed)
            {
                Interlocked.Decrement(ref _waiting.Value);
            }

            return removed;
        }
    }

    // ---------------------------------------------------------------- consumers

    /// <summary>
    /// Attaches a new consumer and gives it what waits, applying the exclusive modes: an exclusive
    /// subscription has one active consumer; a Reject newcomer (or a competing one) is refused, a Standby
    /// one waits, a TakeOver one returns the consumers it replaces in <paramref name="takenOver"/>, already
    /// closed, for the caller to report. Called under the queue's lock.
    /// </summary>
    public Consumer<T> Attach(BrokerClient client, SubscriptionOptions options, long now, ref List<Consumer<T>.Unsettled>? deadLetters, out List<Consumer<T>>? takenOver)
    {
        var consumer = new Consumer<T>(this, client, options, _queue.TimeProvider);
        takenOver = null;
        lock (Gate)
        {
            Debug.Assert(!_deleted);
            if (Name is not null && _consumers.Length > 0)
            {
                switch (options.Exclusive)
                {
                    case ExclusiveMode.None when _exclusiveActive:
                    case ExclusiveMode.Reject:
                        throw InUse(options.Exclusive);
                    case ExclusiveMode.Standby:
                        consumer.IsStandby = true;
                        _standby.Add(consumer);
                        return consumer;
                    case ExclusiveMode.TakeOver:
                        takenOver = [.. _consumers];
                        foreach (Consumer<T> replaced in takenOver)
                        {
                            RemoveLocked(replaced, now, ref deadLetters);
                        }

                        break;
                }
            }

            _exclusiveActive = Name is not null && options.Exclusive != ExclusiveMode.None;
            _consumers = [.. _consumers, consumer];
            DispatchLocked();
            return consumer;
        }
    }

    private SubscriptionInUseException InUse(ExclusiveMode requested)
    {
        BrokerClient holder = _consumers[0].Client;
        string why = requested == ExclusiveMode.None
            ? $"its active consumer is exclusive, so it takes no competing consumers"
            : $"it already has an active consumer and this subscribe asked for ExclusiveMode.Reject";
        return new SubscriptionInUseException(
            _queue.Name,
            Name!,
            holder.Name,
            holder.Id,
            $"Durable subscription '{Name}' on queue '{_queue.Name}' is held by client '{holder.Name}' (#{holder.Id}): {why}. " +
            "Subscribe with ExclusiveMode.Standby to wait for it, ExclusiveMode.TakeOver to replace it, or use another subscription name.");
    }

    /// <summary>
    /// Detaches a consumer. A durable subscription takes back what the consumer held and gives it to the
    /// remaining consumers at once (or to the standby that takes over), except messages on their last
    /// attempt, which go to <paramref name="deadLetters"/>; an ephemeral one ends and hands everything it
    /// held to <paramref name="abandoned"/>. Called under the queue's lock.
    /// </summary>
    /// <returns>False when the consumer was already detached.</returns>
    public bool Detach(Consumer<T> consumer, long now, ref List<Message<T>>? abandoned, ref List<Consumer<T>.Unsettled>? deadLetters)
    {
        lock (Gate)
        {
            if (_standby.Remove(consumer))
            {
                consumer.CloseLocked(now);
                return true;
            }

            if (Array.IndexOf(_consumers, consumer) < 0)
            {
                return false;
            }

            RemoveLocked(consumer, now, ref deadLetters);
            if (_consumers.Length == 0 && _standby.Count > 0)
            {
                // Fail-over: the first standby becomes the active consumer and gets what the one before held.
                Consumer<T> promoted = _standby[0];
                _standby.RemoveAt(0);
                promoted.IsStandby = false;
                _consumers = [promoted];
                _exclusiveActive = true;
            }

            if (Name is null)
            {
                Debug.Assert(_consumers.Length == 0, "an ephemeral subscription has exactly one consumer");
                TakeEverythingLocked(ref abandoned);
            }
            else
            {
                DispatchLocked();
            }

            return true;
        }
    }

    /// <summary>Takes an active consumer out: what it held comes back to wait here (or is dead-lettered on its last attempt).</summary>
    private void RemoveLocked(Consumer<T> consumer, long now, ref List<Consumer<T>.Unsettled>? deadLetters)
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "called with its lock held");
        _consumers = Array.FindAll(_consumers, c => c != consumer);
        _nextConsumer = 0;
        if (_consumers.Length == 0)
        {
            _exclusiveActive = false;
        }

        foreach (Consumer<T>.Unsettled held in consumer.CloseLocked(now))
        {
            if (Name is not null && held.Deliveries >= consumer.MaxDeliveries)
            {
                // Counted here: the consumer's own counters are retired below, and the caller dead-letters it.
                (deadLetters ??= []).Add(held);
                _retired.DeadLettered++;
            }
            else
            {
                ReturnLocked(held.Message, held.Deliveries, held.History);
            }
        }

        _retired.Add(consumer.Counters);
    }

    /// <summary>
    /// Cuts the subscription loose (BacklogOverflowPolicy.Disconnect): every consumer is closed, and every
    /// message it held, waiting or in flight, goes to <paramref name="dropped"/>. Called under the queue's lock.
    /// </summary>
    /// <returns>The closed consumers, or null when the subscription had already ended.</returns>
    public List<Consumer<T>>? CutLoose(long now, ref List<Consumer<T>.Unsettled>? dropped)
    {
        lock (Gate)
        {
            if (_deleted)
            {
                return null;
            }

            List<Consumer<T>> closed = [.. _consumers, .. _standby];
            dropped ??= [];
            foreach (Consumer<T> consumer in closed)
            {
                dropped.AddRange(consumer.CloseLocked(now));
                _retired.Add(consumer.Counters);
            }

            _consumers = [];
            _standby.Clear();
            _deleted = true;
            while (_returned.TryDequeue(out Returned returned, out _))
            {
                dropped.Add(Held(returned));
            }

            foreach (Message<T> message in _backlog)
            {
                dropped.Add(new(message, 0, null));
            }

            _backlog.Clear();
            Volatile.Write(ref _waiting.Value, 0);
            _dropped += dropped.Count;
            return closed;
        }
    }

    /// <summary>
    /// Broker shutdown, first step: no new deliveries to this consumer. The broker stops every consumer
    /// before taking anything back, so that what comes back is not handed to a neighbour that is about
    /// to stop as well.
    /// </summary>
    public void StopDelivering(Consumer<T> consumer)
    {
        lock (Gate)
        {
            consumer.StopLocked();
        }
    }

    /// <summary>
    /// Shutdown (of the broker, or of a hosted handler), second step: deliveries still unread in the consumer's
    /// ring come back here. Returns how many.
    /// </summary>
    public int TakeBackUnread(Consumer<T> consumer)
    {
        lock (Gate)
        {
            List<Consumer<T>.Unsettled> taken = consumer.TakeUnreadLocked(complete: true);
            foreach (Consumer<T>.Unsettled unread in taken)
            {
                ReturnLocked(unread.Message, unread.Deliveries, unread.History);
            }

            return taken.Count;
        }
    }

    /// <summary>
    /// A hosted handler's shutdown ran out of time: the deliveries its handlers still hold come back here without
    /// using up an attempt (they were cut short, not failed), so a message on its last attempt is not dead-lettered
    /// for it. Their tokens go stale: a handler that settles one later gets <see langword="false"/>. Returns how many.
    /// </summary>
    public int TakeBackInFlight(Consumer<T> consumer)
    {
        lock (Gate)
        {
            List<Consumer<T>.Unsettled> taken = consumer.TakeInFlightLocked();
            foreach (Consumer<T>.Unsettled held in taken)
            {
                ReturnLocked(held.Message, held.Deliveries, held.History);
            }

            return taken.Count;
        }
    }

    /// <summary>Deletes a durable subscription that has no consumers. Called under the queue's lock.</summary>
    public void Delete(ref List<Message<T>>? abandoned)
    {
        lock (Gate)
        {
            if (_consumers.Length + _standby.Count > 0)
            {
                throw new InvalidOperationException(
                    $"Durable subscription '{Name}' on queue '{_queue.Name}' has {_consumers.Length + _standby.Count} consumer(s) attached; dispose them before deleting the subscription.");
            }

            TakeEverythingLocked(ref abandoned);
        }
    }

    private void TakeEverythingLocked(ref List<Message<T>>? abandoned)
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "called with its lock held");
        _deleted = true;
        abandoned ??= [];
        while (_returned.TryDequeue(out Returned returned, out _))
        {
            abandoned.Add(returned.Message);
        }

        abandoned.AddRange(_backlog);
        _backlog.Clear();
        Volatile.Write(ref _waiting.Value, 0);
    }

    // ---------------------------------------------------------------- snapshot

    public SubscriptionSnapshot GetSnapshot()
    {
        lock (Gate)
        {
            ConsumerCounters settled = _retired;
            int inFlight = 0;
            foreach (Consumer<T> consumer in _consumers)
            {
                settled.Add(consumer.Counters);
                inFlight += consumer.InFlightLocked;
            }

            return new SubscriptionSnapshot
            {
                Id = Key.Id,
                Queue = _queue.Name,
                Name = Name,
                IsDurable = Name is not null,
                Filters = FilterTexts,
                Consumers = _consumers.Length,
                Standby = _standby.Count,
                Backlog = (int)_waiting.Value,
                InFlight = inFlight,
                Delivered = _delivered,
                Redelivered = _redelivered,
                Acked = settled.Acked,
                Nacked = settled.Nacked,
                DeadLettered = settled.DeadLettered,
                TimedOut = settled.TimedOut,
                Expired = settled.Expired,
                Dropped = _dropped,
                HandlerFailures = Interlocked.Read(ref _handlerFailures),
            };
        }
    }
}
