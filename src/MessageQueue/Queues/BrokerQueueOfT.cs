using System.Collections.Frozen;
using System.Diagnostics;
using System.Globalization;
using MessageQueue.Persistence;

namespace MessageQueue;

/// <summary>
/// A named queue of <typeparamref name="T"/>: it assigns sequences, routes each message to the
/// subscriptions whose filters match, keeps the depth within <see cref="QueueOptions.MaxMessages"/> and
/// applies the overflow policy.
/// </summary>
/// <remarks>
/// <para><b>Order without a queue lock.</b> A publish locks the subscriptions its event routes to
/// (in a fixed order, by subscription id, so publishers never deadlock), takes the next sequence,
/// and hands the message to each of them before unlocking. Every subscription therefore receives the
/// queue's messages in sequence order, and publishers to disjoint subscriptions never contend. The
/// queue's own lock (<see cref="_gate"/>) is only for changing the set of subscriptions, for the route
/// cache on a miss, for overflow eviction and for dead-letter queues.</para>
/// <para><b>Lock order:</b> queue, then subscriptions by id, then a consumer's pending table; the
/// waiting publishers' line (<see cref="WaitAdmission{T}"/>) is taken alone or last. Consumers settling
/// messages take no queue lock, except that line's to wake publishers that wait for room, and a reject,
/// which appends to the dead-letter queue under that queue's lock. No user code (handlers, events, the
/// TimeProvider) runs under any of these locks.</para>
/// <para><b>Strategies, chosen at declare.</b> How the queue keeps messages and counts them against its
/// bound is its <see cref="QueueRetention{T}"/> (interest or limits; every dead-letter queue uses limits),
/// and what a publish into a full queue does is its <see cref="QueueAdmission{T}"/> (wait, reject or drop
/// the oldest). Both are sealed types in readonly fields: no policy flag is tested on the publish path.</para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Reliability",
    "CA1001:Types that own disposable fields should be disposable",
    Justification = "The replay SemaphoreSlim never creates its wait handle (only WaitAsync is used), so it holds nothing to dispose.")]
internal sealed partial class BrokerQueue<T> : BrokerQueue
{
    private readonly Lock _gate = new();
    private readonly Broker _broker;
    private readonly BrokerEvents _events;

    /// <summary>Where everything that happens to the queue's messages is reported.</summary>
    internal BrokerEvents Events => _events;
    private readonly TimeProvider _time;
    private readonly bool _deadLetterDrops;
    private readonly TimeSpan _publishTimeout;
    private readonly TimeSpan _timeToLive;

    // Message ids: a random prefix per queue incarnation plus the sequence.
    private readonly MessageIds _ids = MessageIds.Create();

    // What the envelopes of this queue's plain messages share: its name and its id prefix.
    private readonly MessageOrigin _origin;

    // How messages are kept and counted against MaxMessages, and what a publish into a full queue does.
    private readonly QueueRetention<T> _retention;
    private readonly QueueAdmission<T> _admission;

    // Where the messages live besides memory: nowhere, or a store a restart reads back.
    private readonly QueueStorage<T> _storage;

    private readonly Dictionary<string, SubscriptionState<T>> _durable = new(StringComparer.Ordinal);

    // The subscriptions and which of them each event name routes to; read without a lock, changed under _gate.
    private readonly RouteTable<T> _routes;

    private long _lastSubscriptionId;

    private PaddedCounter _sequence; // written by every publish: kept off the lines consumers read

    // The last sequence a store gave back when the queue was declared (0 without one): what earlier brokers published.
    private long _sequenceAtStart;
    private volatile bool _closed;
    private long _unrouted;
    private int _unroutedWarned; // 1 once the first unrouted message of an auto-declared queue was logged
    private long _dropped;
    private long _abandoned;
    private long _deadLettered;
    private long _replayed;

    // Replays of this queue's dead letters run one at a time, so two never move the same dead letter.
    private readonly SemaphoreSlim _replayGate = new(1, 1);

    /// <param name="broker">The owning broker.</param>
    /// <param name="name">The queue's name.</param>
    /// <param name="options">The queue's options (a private copy).</param>
    /// <param name="isDeadLetterQueue">Whether this is a dead-letter queue.</param>
    /// <param name="store">For a durable queue, where its messages are stored; null for an in-memory queue.</param>
    public BrokerQueue(Broker broker, string name, QueueOptions options, bool isDeadLetterQueue, QueueStore<T>? store = null)
        : base(name, typeof(T), options, isDeadLetterQueue)
    {
        _broker = broker;
        _origin = new MessageOrigin(name, _ids);
        _events = broker.Events;
        _routes = new RouteTable<T>(_gate, broker.Limits.MaxEventNameLength);
        _time = broker.TimeProvider;
        _publishTimeout = options.PublishTimeout;
        _timeToLive = options.TimeToLive;
        _deadLetterDrops = options.DeadLetterDrops && !isDeadLetterQueue;
        if (options.DeduplicationWindow > TimeSpan.Zero && !isDeadLetterQueue)
        {
            _deduplication = new Deduplication(options.DeduplicationWindow, options.DeduplicationCapacity, _time);
        }

        var depth = new DepthGauge(options.MaxMessages);
        _admission = QueueAdmission<T>.Create(this, options.Overflow, depth);
        _retention = QueueRetention<T>.Create(this, options, _admission, depth);
        _storage = store is { } durable
            ? new DurableQueueStorage<T>(
                this,
                durable.Writer,
                durable.Durability,
                durable.Serializer,
                broker.Limits.MaxPersistedPayloadSize,
                _deduplication is null ? TimeSpan.Zero : options.DeduplicationWindow,
                memoryWindow: _retention is InterestRetention<T> && options.Overflow != OverflowPolicy.DropOldest ? options.MaxMessagesInMemory : 0)
            : new MemoryQueueStorage<T>(this);
    }

    public TimeProvider TimeProvider => _time;

    /// <summary>The queue's dead-letter queue; null for a dead-letter queue itself.</summary>
    public BrokerQueue<T>? DeadLetterQueue { get; init; }

    /// <summary>The queue's lock: the subscription set, the route cache on a miss, eviction and the log change under it.</summary>
    internal Lock Gate => _gate;

    /// <summary>The subscriptions, and which of them each event routes to.</summary>
    internal RouteTable<T> Routes => _routes;

    /// <summary>The last sequence taken.</summary>
    internal long LastSequence => Volatile.Read(ref _sequence.Value);

    /// <summary>Where the queue's messages live besides memory.</summary>
    internal QueueStorage<T> Storage => _storage;

    /// <summary>Gets whether the queue keeps its messages in a store.</summary>
    public override bool IsDurable => _storage.IsDurable;

    /// <summary>The retained log of a limits-retention queue (every dead-letter queue). Only such queues call this.</summary>
    internal LimitsRetention<T> Log => (LimitsRetention<T>)_retention;

    // ---------------------------------------------------------------- publish

    public ValueTask<PublishReceipt> PublishAsync(string eventName, T payload, in PublishOptions options, CancellationToken cancellationToken)
    {
        Draft<T> draft = Prepare(eventName, payload, options);
        TimeSpan timeout = options.Timeout ?? _publishTimeout;
        return _deduplication is not null && options.MessageId is not null
            ? PublishOnceAsync(draft, timeout, cancellationToken)
            : PublishAsync(draft, timeout, cancellationToken);
    }

    private ValueTask<PublishReceipt> PublishAsync(Draft<T> draft, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (TryPublishNow(draft, out PublishReceipt receipt, out long ticket))
        {
            return ticket == 0 ? new ValueTask<PublishReceipt>(receipt) : AfterCommitAsync(receipt, ticket);
        }

        return _admission.WhenFullAsync(draft, timeout, cancellationToken);
    }

    public bool TryPublish(string eventName, T payload, in PublishOptions options, out PublishReceipt receipt)
    {
        Draft<T> draft = Prepare(eventName, payload, options);
        if (_storage.IsDurable)
        {
            // A durable publish completes only after a commit, which never happens synchronously.
            receipt = default;
            return false;
        }

        return _deduplication is not null && options.MessageId is not null
            ? TryPublishOnce(draft, out receipt)
            : TryPublishNow(draft, out receipt, out _);
    }

    /// <summary>
    /// Publishes if that needs no waiting (see <see cref="QueueRetention{T}.TryPublishNow"/>). False when the
    /// queue is full and its admission refuses.
    /// </summary>
    /// <param name="draft">The message.</param>
    /// <param name="receipt">Its receipt.</param>
    /// <param name="ticket">For a durable queue, the store ticket to wait for before the publish completes; 0 otherwise.</param>
    private bool TryPublishNow(in Draft<T> draft, out PublishReceipt receipt, out long ticket)
    {
        Debug.Assert(!IsDeadLetterQueue, "the broker refuses publishes into dead-letter queues");
        ThrowIfClosed();
        return _retention.TryPublishNow(draft, out receipt, out ticket);
    }

    /// <summary>The draft holds one unit of depth: deliver it now, or hold it until it is due.</summary>
    internal PublishReceipt Admitted(Route<T>? route, in Draft<T> draft, out long ticket) =>
        route is null ? Schedule(draft, out ticket) : Deliver(route, draft, out ticket);

    public override ValueTask<PublishReceipt> PublishConvertedAsync<TIn>(string eventName, TIn payload, in PublishOptions options, CancellationToken cancellationToken) =>
        PublishAsync(eventName, (T)(object)payload!, options, cancellationToken);

    public override bool TryPublishConverted<TIn>(string eventName, TIn payload, in PublishOptions options, out PublishReceipt receipt) =>
        TryPublish(eventName, (T)(object)payload!, options, out receipt);

    /// <summary>
    /// No subscription matches the event: under interest retention nothing keeps the message, so it is
    /// not even built. It still takes a sequence and is counted, so that publishing into the void shows
    /// in the snapshot.
    /// </summary>
    internal PublishReceipt PublishUnrouted(in Draft<T> draft, out long ticket)
    {
        long sequence = _storage.TakeUnstoredSequence(out ticket);
        CountUnrouted(draft.Event);
        Guid id = draft.Id == Guid.Empty ? _ids.For(sequence) : draft.Id;
        _events.PublishedUnrouted(this, id, sequence, draft.Event, draft.Payload, draft.Headers);
        if (AutoDeclared && Volatile.Read(ref _unroutedWarned) == 0 && Interlocked.Exchange(ref _unroutedWarned, 1) == 0)
        {
            // Once per queue: a queue declared on first use is often a misspelt name, whose messages would otherwise
            // vanish without a sound. Later unrouted publishes are in the counters.
            _events.FirstUnroutedInAutoDeclaredQueue(Name, draft.Event, _routes.Subscriptions.Length);
        }

        return new PublishReceipt(Name, id, sequence);
    }

    /// <summary>A published message was not kept: nothing matched it. Counted in the snapshot and the unrouted counter.</summary>
    private void CountUnrouted(string eventName)
    {
        Interlocked.Increment(ref _unrouted);
        _events.Unrouted(Name, eventName);
    }

    /// <summary>The admitted message goes on to the subscriptions on the route: now, or after its commit (<see cref="QueueStorage{T}.Deliver"/>).</summary>
    internal PublishReceipt Deliver(Route<T> route, in Draft<T> draft, out long ticket) => _storage.Deliver(route, draft, out ticket);

    /// <summary>
    /// Builds the message and hands it to every subscription on the route, now (an in-memory queue). The caller holds
    /// one unit of room for it. The hot path: one allocation (the envelope) and one lock per subscription.
    /// </summary>
    internal PublishReceipt HandOver(Route<T> route, in Draft<T> draft)
    {
        // Read the clock before taking any lock: a TimeProvider is user code. Concurrent publishes may
        // therefore carry timestamps a little out of sequence order; sequences are the order.
        long timestamp = _time.GetUtcNow().UtcTicks;
        SubscriptionState<T>[] subscriptions = route.Subscriptions;
        Message<T> message;
        int receivers;
        if (subscriptions.Length == 1)
        {
            SubscriptionState<T> only = subscriptions[0];
            lock (only.Gate)
            {
                message = CreateMessage(draft, timestamp);
                receivers = only.IsDeleted ? 0 : 1;
                if (receivers == 1)
                {
                    _events.NoteEntering(this, message, 1);
                    message.InitializeReferences(1);
                    only.EnqueueLocked(message);
                }
            }
        }
        else
        {
            EnterAll(subscriptions);
            try
            {
                message = CreateMessage(draft, timestamp);
                receivers = HandOverLocked(subscriptions, message, committed: false);
            }
            finally
            {
                ExitAll(subscriptions);
            }
        }

        // The route may have gone stale: every subscription on it ended while we published.
        AfterHandOver(subscriptions, message, receivers);
        return new PublishReceipt(Name, message.Id, message.Sequence);
    }

    /// <summary>
    /// After a hand-over, with the locks released: the message counts as sent; one that no subscription took (its route
    /// went stale, or, committed, nobody wants it any more) is not kept, gives back its room and counts as unrouted; and
    /// what the subscriptions' own bounds left to do is finished.
    /// </summary>
    private void AfterHandOver(SubscriptionState<T>[] subscriptions, Message<T> message, int receivers)
    {
        _events.Sent(Name, IsDeadLetterQueue, message.Event);
        if (receivers == 0)
        {
            _events.NoteEntering(this, message, 0);
            CountUnrouted(message.Event);
            _retention.ReturnRoom();
            _storage.Removed(message.Sequence);
        }

        foreach (SubscriptionState<T> subscription in subscriptions)
        {
            if (subscription.HasPendingWork)
            {
                FinishPendingWork(subscription);
            }
        }
    }

    /// <summary>
    /// Hands a message to every subscription that takes it: not ended, and for a committed durable message,
    /// created before its sequence was taken. Called with all of them locked.
    /// </summary>
    /// <returns>How many took it.</returns>
    private int HandOverLocked(SubscriptionState<T>[] subscriptions, Message<T> message, bool committed)
    {
        Debug.Assert(Array.TrueForAll(subscriptions, static s => s.Gate.IsHeldByCurrentThread), "called with its lock held");
        int receivers = 0;
        foreach (SubscriptionState<T> subscription in subscriptions)
        {
            receivers += Takes(subscription, message, committed) ? 1 : 0;
        }

        if (receivers > 0)
        {
            _events.NoteEntering(this, message, receivers);
            message.InitializeReferences(receivers);
            foreach (SubscriptionState<T> subscription in subscriptions)
            {
                if (Takes(subscription, message, committed))
                {
                    subscription.EnqueueLocked(message);
                }
            }
        }

        return receivers;
    }

    private static bool Takes(SubscriptionState<T> subscription, Message<T> message, bool committed) =>
        !subscription.IsDeleted && (!committed || subscription.StartAfter < message.Sequence);

    /// <summary>Locks subscriptions in their order (by id), as every publisher does, so publishers never deadlock.</summary>
    internal static void EnterAll(SubscriptionState<T>[] subscriptions)
    {
        foreach (SubscriptionState<T> subscription in subscriptions)
        {
            subscription.Gate.Enter();
        }
    }

    internal static void ExitAll(SubscriptionState<T>[] subscriptions)
    {
        for (int i = subscriptions.Length - 1; i >= 0; i--)
        {
            subscriptions[i].Gate.Exit();
        }
    }

    /// <summary>Takes the queue's next sequence.</summary>
    internal long NextSequence() => Interlocked.Increment(ref _sequence.Value);

    /// <summary>Takes the next sequence and builds the envelope. Called with the route's subscriptions locked, so that sequence order is delivery order.</summary>
    internal Message<T> CreateMessage(in Draft<T> draft, long timestamp)
    {
        long sequence = NextSequence();
        if (draft.Id == Guid.Empty && draft.ExpiresAt == 0 && (ReferenceEquals(draft.Headers, FrozenDictionary<string, string>.Empty) || draft.Headers.Count == 0))
        {
            // The common message: everything but its own fields comes from the queue.
            return new Message<T>(_origin, draft.Event, draft.Payload, sequence, timestamp);
        }

        return new Message<T>(draft.Id == Guid.Empty ? _ids.For(sequence) : draft.Id, Name, draft.Event, draft.Payload, sequence, timestamp, draft.Headers, draft.ExpiresAt);
    }

    /// <summary>
    /// Publishes a draft that holds one unit of room, granted to a publisher that waited for it
    /// (<see cref="WaitAdmission{T}"/>). The broker may have closed, or the route changed, meanwhile.
    /// </summary>
    internal async ValueTask<PublishReceipt> PublishWithRoomAsync(Draft<T> draft)
    {
        if (_closed)
        {
            _retention.ReturnRoom();
            throw _broker.CreateDisposedException();
        }

        long ticket;
        PublishReceipt receipt;
        if (draft.DueAt != 0)
        {
            receipt = Schedule(draft, out ticket);
        }
        else
        {
            Route<T> route = draft.Target is { IsDeleted: false } target ? _routes.To(target) : _routes.Get(draft.Event);
            if (route.Subscriptions.Length == 0)
            {
                _retention.ReturnRoom();
                receipt = PublishUnrouted(draft, out ticket);
            }
            else
            {
                receipt = Deliver(route, draft, out ticket);
            }
        }

        if (ticket != 0)
        {
            await _storage.WaitForCommitAsync(ticket).ConfigureAwait(false);
        }

        return receipt;
    }

    /// <summary>One unit of room reserved for a publish comes back unused.</summary>
    internal void ReturnRoom() => _retention.ReturnRoom();

    /// <summary>A subscription lets go of a message (settled, dropped or abandoned). Called with no lock held, or with only the queue's _gate.</summary>
    /// <param name="message">The message.</param>
    /// <param name="subscription">The durable subscription that settled it, to tell the store; null when none did (an ephemeral or deleted subscription let go).</param>
    internal void Release(Message<T> message, string? subscription = null)
    {
        // Whether the message left the queue for good: interest retention lets go of it with its last holder (and
        // gives its room back), limits retention keeps it in the log until it is evicted.
        bool gone = message.Release(out bool last) && _retention.LastReleased();
        _storage.Released(message, subscription, gone, last);

        // Last: the test harness wakes a waiting test on this call, and that test reads the snapshot at once, so the
        // room the message held must already be free.
        _events.Released(Name, message);
    }

    /// <summary>The exception for a publish that found no room: at once (Reject), or after waiting <paramref name="waited"/>.</summary>
    internal QueueFullException Full(TimeSpan? waited) => new(
        Name,
        waited is { } timeout
            ? string.Create(CultureInfo.InvariantCulture, $"Queue '{Name}' stayed full (MaxMessages = {Options.MaxMessages}) for the whole publish timeout of {timeout}; nothing was published. Let its subscribers catch up, raise MaxMessages, or pass a longer PublishOptions.Timeout.")
            : string.Create(CultureInfo.InvariantCulture, $"Queue '{Name}' is full (MaxMessages = {Options.MaxMessages}) and its overflow policy is Reject; nothing was published. Retry later, let its subscribers catch up, raise MaxMessages, or declare the queue with OverflowPolicy.Wait or DropOldest."),
        null);

    // ---------------------------------------------------------------- overflow

    /// <summary>
    /// Drops every waiting message up to <paramref name="sequence"/> from every subscription, raising one event
    /// each. With <paramref name="deadLetters"/>, each drop is also kept there, to be dead-lettered after the locks.
    /// </summary>
    internal bool DropWaitingUpToLocked(long sequence, DropReason reason, ref List<MessageDroppedEventArgs>? dropped, List<OverflowDeadLetter<T>>? deadLetters = null)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread, "called with its lock held");
        bool any = false;
        foreach (SubscriptionState<T> subscription in _routes.Subscriptions)
        {
            foreach (Consumer<T>.Unsettled held in subscription.DropWaitingUpTo(sequence))
            {
                any = true;
                Message<T> message = held.Message;
                (dropped ??= []).Add(new MessageDroppedEventArgs(Name, subscription.Name ?? string.Empty, message.Id, message.Sequence, message.Event, reason));
                if (deadLetters is not null)
                {
                    // Still owed until it is in the dead-letter queue (after the locks): the observer must not see
                    // a moment when it is in neither place.
                    _events.NoteReferenced(1);
                    deadLetters.Add(new OverflowDeadLetter<T>(held, subscription.Name, subscription.Key));
                }

                Release(message, subscription.Name);
            }
        }

        return any;
    }

    // ---------------------------------------------------------------- lifetime and snapshot

    public override void Close()
    {
        AbandonScheduled();
        _closed = true;
        _admission.Close();
    }

    /// <summary>A store forgets a message that left the queue for good (durable queues; nothing otherwise).</summary>
    internal void StoreRemoved(long sequence) => _storage.Removed(sequence);

    /// <summary>A store forgets a held message that entered the queue or was dropped (durable queues; nothing otherwise).</summary>
    internal void StoreUnscheduled(Guid id) => _storage.Unscheduled(id);

    /// <summary>On the store's writer thread, before each batch: the cursors that moved since the last one.</summary>
    internal override void PostCursors() => _storage.PostCursors(_routes.Subscriptions);

    /// <summary>The exception for a publish into a queue whose broker was disposed.</summary>
    internal ObjectDisposedException CreateDisposedException() => _broker.CreateDisposedException();

    /// <summary>Counts a message dropped from the queue (the snapshot's Dropped).</summary>
    internal void CountDropped() => Interlocked.Increment(ref _dropped);

    /// <summary>Counts a dead letter moved back into its source queue (the snapshot's Replayed). Under the queue's lock.</summary>
    internal void CountReplayed() => _replayed++;

    private void ThrowIfClosed()
    {
        if (_closed)
        {
            throw _broker.CreateDisposedException();
        }
    }

    public override QueueSnapshot GetSnapshot()
    {
        lock (_gate)
        {
            var subscriptions = new List<SubscriptionSnapshot>(_routes.Subscriptions.Length);
            foreach (SubscriptionState<T> subscription in _routes.Subscriptions)
            {
                subscriptions.Add(subscription.GetSnapshot());
            }

            int waiting = _admission.Waiting;

            long sequence = Interlocked.Read(ref _sequence.Value);
            return new QueueSnapshot
            {
                Name = Name,
                PayloadType = PayloadType,
                IsDeadLetterQueue = IsDeadLetterQueue,
                MaxMessages = Options.MaxMessages,
                Overflow = _admission.Policy,
                Depth = _retention.Depth,
                LastSequence = sequence,
                Published = sequence - _sequenceAtStart,
                Unrouted = Interlocked.Read(ref _unrouted),
                Dropped = Interlocked.Read(ref _dropped),
                Abandoned = Interlocked.Read(ref _abandoned),
                DeadLettered = Interlocked.Read(ref _deadLettered),
                Replayed = _replayed,
                Retention = _retention.Policy,
                Scheduled = _scheduled.Count,
                PagedOut = (_storage as DurableQueueStorage<T>)?.Pager?.PagedOut ?? 0,
                Deduplicated = Interlocked.Read(ref _deduplicated),
                WaitingPublishers = waiting,
                Subscriptions = subscriptions,
            };
        }
    }
}
