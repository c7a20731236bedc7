using System.Diagnostics;
using MessageQueue.Persistence;

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
/// A publisher looks at credit under <see cref="Gate"/> when the backlog is empty; a consumer frees credit
/// without it and then looks at <see cref="_waiting"/>. Both sides write, fence, then read (Dekker), so the
/// first message into an empty backlog never waits there while a consumer has room for it. The messages
/// behind it join the backlog without a look at credit, and each consumer refills from it, as many as its
/// credit allows in one go, when its ring runs low or before it waits: a consumer that is behind and a
/// publisher that is ahead trade cache lines once per batch instead of once per message.</para>
/// </remarks>
internal sealed partial class SubscriptionState<T> : IStoreCommitTarget
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

    // _backlog.Count + _returned.Count. Written under Gate (with Interlocked, a full fence, where the credit
    // protocol needs one), read by settling consumers without the lock.
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

    /// <summary>The parsed filters, indexed by the queue's <see cref="SubscriptionTrie{T}"/>.</summary>
    public TopicFilter[] TopicFilters => _filters;

    /// <summary>The last route computation that matched this subscription; written only under the queue's lock (<see cref="SubscriptionTrie{T}"/>).</summary>
    public long RouteMark { get; set; }

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

    /// <summary>
    /// A message read back from the store: one read before (or given back with a count) waits with the others that came
    /// back, <paramref name="deliveries"/> deliveries so far; any other joins the backlog as new. Called with
    /// <see cref="Gate"/> held; consumers may be attached (a memory window's later pages).
    /// </summary>
    public void EnqueueStoredLocked(Message<T> message, int deliveries, bool cameBack)
    {
        if (cameBack)
        {
            RestoreReturnedLocked(message, deliveries);
            DispatchLocked();
        }
        else
        {
            EnqueueLocked(message);
        }
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
    /// <param name="Message">The message.</param>
    /// <param name="Deliveries">How many times it was delivered so far.</param>
    /// <param name="History">Its failures, if any.</param>
    /// <param name="Count">On a durable queue, the store's record of <paramref name="Deliveries"/>: the message goes out again only once it is committed. Null when there is nothing to wait for.</param>
    private readonly record struct Returned(Message<T> Message, int Deliveries, DeliveryHistory? History, StoredCount? Count = null)
    {
        public bool IsReady => Count is null || Count.IsSettled;
    }

    /// <summary>A delivery count posted to the store; settled once committed, or once the store can no longer commit it.</summary>
    private sealed class StoredCount
    {
        private volatile bool _settled;

        public bool IsSettled => _settled;

        public void Settle() => _settled = true;
    }

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

        if (_waiting.Value == 0)
        {
            // Caught up: hand the message straight to a consumer's ring.
            if (NextConsumerWithCreditLocked() is { } consumer)
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
        }
        else
        {
            // Behind: the message queues up after the others without looking at any consumer's credit. The consumers
            // saw the backlog start (the look above), and each refills from it, in batches, when its ring runs low or
            // before it waits; looking at credit on every publish would read a line each consumer writes on every ack.
            _backlog.Enqueue(message);
            Volatile.Write(ref _waiting.Value, _waiting.Value + 1);
        }

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
        while (_waiting.Value > 0)
        {
            // A message that came back goes out again only once the store holds its delivery count, so its attempt number
            // never goes back after a crash; everything behind it waits with it, which keeps the order.
            if (_returned.TryPeek(out Returned head, out _) && !head.IsReady)
            {
                break;
            }

            if (NextConsumerWithCreditLocked() is not { } consumer)
            {
                break;
            }

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

    /// <summary>
    /// A delivery handed to a consumer came back unread (the consumer left, or stopped): it was never delivered, so it
    /// leaves the counts it entered. Called with <see cref="Gate"/> held.
    /// </summary>
    public void UncountUnreadLocked(int attempt)
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "called with its lock held");
        _delivered--;
        if (attempt > 1)
        {
            _redelivered--;
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
        StoredCount? count = null;
        if (Name is not null && _queue.Storage.IsDurable)
        {
            if (deliveries > 0)
            {
                // A restart redelivers it with its attempt count kept. It goes out again only after the count is
                // committed (OnCommitted), so a crash never hands it out with a lower attempt number than before.
                count = new StoredCount();
                if (!_queue.Storage.DeliveriesCounted(Name, message.Sequence, deliveries, this, count))
                {
                    count.Settle(); // the store takes nothing more (shutting down, or failed): nothing to wait for
                }
            }
            else if (message.Sequence <= Volatile.Read(ref _deliveredCursor))
            {
                // Read once and given back unattempted (a handler cut short by a stop): the stored cursor, which says
                // "read", would otherwise count it as delivered once. Not waited for: if it is lost, the attempt goes up,
                // never back.
                _queue.Storage.DeliveriesCounted(Name, message.Sequence, deliveries);
            }
        }

        _returned.Enqueue(new Returned(message, deliveries, history, count), message.Sequence);
        Interlocked.Increment(ref _waiting.Value);
    }

    /// <summary>On the store's writer thread: a delivery count is committed, so its message may go out again.</summary>
    void IStoreCommitTarget.OnCommitted(object? state) => Settle((StoredCount)state!);

    /// <summary>On the store's writer thread: the store failed and will commit nothing more; the message goes out anyway.</summary>
    void IStoreCommitTarget.OnFailed(object? state) => Settle((StoredCount)state!);

    private void Settle(StoredCount count)
    {
        lock (Gate)
        {
            count.Settle();
            if (!_deleted)
            {
                DispatchLocked();
            }
        }
    }
}
