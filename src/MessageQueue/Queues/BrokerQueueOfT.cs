using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
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
/// <para><b>Lock order:</b> queue, then subscriptions by id, then a consumer's pending table;
/// <see cref="_waitersGate"/> is taken alone or last. Consumers settling messages take no queue lock,
/// except <see cref="_waitersGate"/> to wake publishers that wait for room, and a reject, which
/// appends to the dead-letter queue under that queue's lock. No user code (handlers, events, the
/// TimeProvider) runs under any of these locks.</para>
/// <para><b>Retention.</b> A normal queue uses interest retention: a routed message counts towards
/// the depth from its publish until every subscription it was routed to has let go of it. A
/// dead-letter queue uses limits retention: it keeps its newest <see cref="QueueOptions.MaxMessages"/>
/// dead letters whether or not anyone read them, so that they can be inspected later.</para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Reliability",
    "CA1001:Types that own disposable fields should be disposable",
    Justification = "The replay SemaphoreSlim never creates its wait handle (only WaitAsync is used), so it holds nothing to dispose.")]
internal sealed partial class BrokerQueue<T> : BrokerQueue
{
    // Event names are data: an unbounded route cache would be an unbounded buffer.
    private const int MaxCachedRoutes = 1024;

    private readonly Lock _gate = new();
    private readonly Broker _broker;
    private readonly BrokerObserver? _observer;
    private readonly BrokerMetrics _metrics;

    /// <summary>The observer of every message's life, or null.</summary>
    internal BrokerObserver? Observer => _observer;

    /// <summary>The broker's instruments.</summary>
    internal BrokerMetrics Metrics => _metrics;

    /// <summary>The broker's logger.</summary>
    internal Microsoft.Extensions.Logging.ILogger Logger => _broker.Logger;
    private readonly TimeProvider _time;
    private readonly int _maxMessages;
    private readonly OverflowPolicy _overflow;
    private readonly bool _deadLetterDrops;
    private readonly TimeSpan _publishTimeout;
    private readonly TimeSpan _timeToLive;

    // Message ids: a random prefix per queue incarnation plus the sequence. Unique, cheap, and free
    // of allocation; not meant to be unguessable.
    private readonly int _idA;
    private readonly short _idB;
    private readonly short _idC;

    private readonly DepthGauge _depth;

    // Limits retention only (dead-letter queues among them), under _gate: the retained messages in order.
    private readonly Queue<Message<T>>? _log;
    private readonly long _maxAge; // UTC ticks; 0 for no limit

    private readonly Dictionary<string, SubscriptionState<T>> _durable = new(StringComparer.Ordinal);

    // Route cache. _routes is never changed once published: a miss copies it under _gate and swaps the
    // copy in, so publishers read it without a lock. _lastRoute answers a publisher that keeps using the
    // same event name string without even hashing it.
    private Dictionary<string, Route> _routes = new(StringComparer.Ordinal);
    private Route? _lastRoute;

    // Publishers waiting for room (OverflowPolicy.Wait), in arrival order.
    private readonly Lock _waitersGate = new();
    private readonly LinkedList<PublishWaiter> _waiters = new();
    private int _waiterCount;

    // Copy-on-write under _gate. _routeVersion changes with it, which invalidates cached routes.
    private SubscriptionState<T>[] _subscriptions = [];
    private int _routeVersion;
    private long _lastSubscriptionId;

    private PaddedCounter _sequence; // written by every publish: kept off the lines consumers read
    private volatile bool _closed;
    private long _unrouted;
    private int _unroutedWarned; // 1 once the first unrouted message of an auto-declared queue was logged
    private long _dropped;
    private long _abandoned;
    private long _deadLettered;
    private long _replayed;

    // Replays of this queue's dead letters run one at a time, so two never move the same dead letter.
    private readonly SemaphoreSlim _replayGate = new(1, 1);

    public BrokerQueue(Broker broker, string name, QueueOptions options, bool isDeadLetterQueue)
        : base(name, typeof(T), options, isDeadLetterQueue)
    {
        _broker = broker;
        _observer = broker.Observer;
        _metrics = broker.Metrics;
        _time = broker.TimeProvider;
        _maxMessages = options.MaxMessages;
        _overflow = options.Overflow;
        _publishTimeout = options.PublishTimeout;
        _timeToLive = options.TimeToLive;
        _deadLetterDrops = options.DeadLetterDrops && !isDeadLetterQueue;
        if (options.DeduplicationWindow > TimeSpan.Zero && !isDeadLetterQueue)
        {
            _deduplication = new Deduplication(options.DeduplicationWindow, options.DeduplicationCapacity, _time);
        }
        _depth = new DepthGauge(options.MaxMessages);
        if (options.Retention == RetentionPolicy.Limits)
        {
            _log = new Queue<Message<T>>();
            _maxAge = options.MaxAge == Timeout.InfiniteTimeSpan ? 0 : options.MaxAge.Ticks;
        }

        Span<byte> random = stackalloc byte[8];
        RandomNumberGenerator.Fill(random);
        _idA = BitConverter.ToInt32(random);
        _idB = BitConverter.ToInt16(random[4..]);
        _idC = (short)((BitConverter.ToUInt16(random[6..]) & 0x0FFF) | 0x8000); // RFC 9562 version 8 (custom)
    }

    public TimeProvider TimeProvider => _time;

    /// <summary>The queue's dead-letter queue; null for a dead-letter queue itself.</summary>
    public BrokerQueue<T>? DeadLetterQueue { get; init; }

    /// <summary>The subscriptions one event name routes to, ordered by id (the lock order), as of one version of the subscription set.</summary>
    private sealed class Route(string eventName, SubscriptionState<T>[] subscriptions, int version)
    {
        public string Event { get; } = eventName;

        public SubscriptionState<T>[] Subscriptions { get; } = subscriptions;

        public int Version { get; } = version;
    }

    /// <summary>A message on its way in: everything but its sequence and timestamp.</summary>
    /// <param name="Event">The event name.</param>
    /// <param name="Payload">The payload.</param>
    /// <param name="Headers">Frozen headers.</param>
    /// <param name="Id">A given message id (a replayed dead letter keeps its own), or empty to derive one from the sequence.</param>
    /// <param name="ExpiresAt">UTC ticks at which the message expires; 0 for never.</param>
    /// <param name="DueAt">UTC ticks before which the message is held out of the queue; 0 to enter it now.</param>
    /// <param name="Target">For a replayed dead letter: the one subscription it goes back to, instead of every match.</param>
    private readonly record struct Draft(string Event, T Payload, IReadOnlyDictionary<string, string> Headers, Guid Id, long ExpiresAt = 0, long DueAt = 0, SubscriptionState<T>? Target = null);

    // ---------------------------------------------------------------- publish

    public ValueTask<PublishReceipt> PublishAsync(string eventName, T payload, in PublishOptions options, CancellationToken cancellationToken)
    {
        Draft draft = Prepare(eventName, payload, options);
        TimeSpan timeout = options.Timeout ?? _publishTimeout;
        return _deduplication is not null && options.MessageId is not null
            ? PublishOnceAsync(draft, timeout, cancellationToken)
            : PublishAsync(draft, timeout, cancellationToken);
    }

    private ValueTask<PublishReceipt> PublishAsync(Draft draft, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (TryPublishNow(draft, out PublishReceipt receipt, out long ticket))
        {
            return ticket == 0 ? new ValueTask<PublishReceipt>(receipt) : AfterCommitAsync(receipt, ticket);
        }

        if (_overflow == OverflowPolicy.Reject)
        {
            throw Full(null);
        }

        // A handler of this queue's own subscription must not wait for room here: the handler would hold
        // its delivery, and with it part of the room it waits for, possibly all of it.
        if (HandlerScope.Current?.Consumer?.OwnerQueue == this)
        {
            throw new QueueFullException(
                Name,
                $"Queue '{Name}' is full (MaxMessages = {_maxMessages}), and this publish comes from a handler of one of its own subscriptions. " +
                "Waiting for room would hold that handler's delivery, and room may only come from it, so the broker refuses instead of waiting. " +
                "Publish into another queue, settle the delivery before publishing, raise MaxMessages, or declare the queue with OverflowPolicy.Reject or DropOldest.",
                null);
        }

        return WaitForRoomAsync(draft, timeout, cancellationToken);
    }

    public bool TryPublish(string eventName, T payload, in PublishOptions options, out PublishReceipt receipt)
    {
        Draft draft = Prepare(eventName, payload, options);
        if (_writer is not null)
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
    /// Checks a publish's options and turns them into a draft: frozen headers, the expiry, the time it is
    /// held until, and its id. The clock is read only when the options need it.
    /// </summary>
    private Draft Prepare(string eventName, T payload, in PublishOptions options)
    {
        // The common publish has no options and the queue no default time to live: nothing to check.
        if (options.Headers is null && options.Timeout is null && options.TimeToLive is null && options.DeliverAfter is null
            && options.NotBefore is null && options.MessageId is null && _timeToLive == Timeout.InfiniteTimeSpan)
        {
            return new Draft(eventName, payload, FrozenDictionary<string, string>.Empty, Guid.Empty);
        }

        IReadOnlyDictionary<string, string> headers = FreezeHeaders(options.Headers, _broker.Limits.MaxHeadersLength);
        if (options.Timeout is { } timeout && Timeouts.Describe(timeout, "PublishOptions.Timeout", allowZero: false) is { } timeoutError)
        {
            throw new ArgumentOutOfRangeException(nameof(options), timeout, timeoutError);
        }

        if (options.TimeToLive is { } ttl && Timeouts.Describe(ttl, "PublishOptions.TimeToLive", allowZero: false) is { } ttlError)
        {
            throw new ArgumentOutOfRangeException(nameof(options), ttl, ttlError);
        }

        if (options.DeliverAfter is { } after)
        {
            string? afterError = after == Timeout.InfiniteTimeSpan
                ? "PublishOptions.DeliverAfter is infinite; the message would never be delivered. Use a finite delay."
                : Timeouts.Describe(after, "PublishOptions.DeliverAfter", allowZero: true);
            if (afterError is not null)
            {
                throw new ArgumentOutOfRangeException(nameof(options), after, afterError);
            }
        }

        if (options.DeliverAfter is not null && options.NotBefore is not null)
        {
            throw new ArgumentException("PublishOptions.DeliverAfter and NotBefore are both set; give one or the other.", nameof(options));
        }

        if (options.MessageId == Guid.Empty)
        {
            throw new ArgumentException("PublishOptions.MessageId is Guid.Empty; give a real id, or null for one the broker assigns.", nameof(options));
        }

        TimeSpan? timeToLive = options.TimeToLive ?? (_timeToLive == Timeout.InfiniteTimeSpan ? null : _timeToLive);
        long expiresAt = 0, dueAt = 0;
        if (timeToLive is not null || options.DeliverAfter is not null || options.NotBefore is not null)
        {
            long now = _time.GetUtcNow().UtcTicks;
            expiresAt = timeToLive is { } live ? now + live.Ticks : 0;
            dueAt = options.DeliverAfter is { } delay && delay > TimeSpan.Zero ? now + delay.Ticks
                : options.NotBefore is { } notBefore && notBefore.UtcTicks > now ? notBefore.UtcTicks
                : 0;
        }

        // A held message has no sequence yet, so its id cannot come from one.
        Guid id = options.MessageId ?? (dueAt != 0 ? Guid.NewGuid() : Guid.Empty);
        return new Draft(eventName, payload, headers, id, expiresAt, dueAt);
    }

    /// <summary>
    /// Publishes if that needs no waiting: the event routes nowhere, the queue has room (and nobody waits
    /// ahead), or the policy is DropOldest. False when the queue is full under Wait or Reject.
    /// </summary>
    /// <param name="draft">The message.</param>
    /// <param name="receipt">Its receipt.</param>
    /// <param name="ticket">For a durable queue, the store ticket to wait for before the publish completes; 0 otherwise.</param>
    private bool TryPublishNow(in Draft draft, out PublishReceipt receipt, out long ticket)
    {
        Debug.Assert(!IsDeadLetterQueue, "the broker refuses publishes into dead-letter queues");
        ThrowIfClosed();
        ticket = 0;
        if (_log is not null)
        {
            return TryPublishToLog(draft, out receipt, out ticket);
        }

        // A held message is routed when it enters the queue; now only its name is checked.
        Route? route = null;
        if (draft.DueAt == 0)
        {
            route = draft.Target is { IsDeleted: false } target ? new Route(draft.Event, [target], Volatile.Read(ref _routeVersion)) : GetRoute(draft.Event);
            if (route.Subscriptions.Length == 0)
            {
                receipt = PublishUnrouted(draft);
                return true;
            }
        }
        else
        {
            ValidateEvent(draft.Event);
        }

        // Waiting publishers go first, so a newcomer never overtakes them.
        if (Volatile.Read(ref _waiterCount) == 0 && _depth.TryAdmit())
        {
            receipt = Admitted(route, draft, out ticket);
            return true;
        }

        if (_overflow == OverflowPolicy.DropOldest)
        {
            MakeRoomByDropping();
            receipt = Admitted(route, draft, out ticket);
            return true;
        }

        receipt = default;
        return false;
    }

    /// <summary>The draft holds one unit of depth: deliver it now, or hold it until it is due.</summary>
    private PublishReceipt Admitted(Route? route, in Draft draft, out long ticket) =>
        route is null ? Schedule(draft, out ticket) : Deliver(route, draft, out ticket);

    public override ValueTask<PublishReceipt> PublishConvertedAsync<TIn>(string eventName, TIn payload, in PublishOptions options, CancellationToken cancellationToken) =>
        PublishAsync(eventName, (T)(object)payload!, options, cancellationToken);

    public override bool TryPublishConverted<TIn>(string eventName, TIn payload, in PublishOptions options, out PublishReceipt receipt) =>
        TryPublish(eventName, (T)(object)payload!, options, out receipt);

    /// <summary>Checks an event name: the broker's rules for names, and <see cref="BrokerOptions.MaxEventNameLength"/>.</summary>
    private void ValidateEvent(string eventName)
    {
        Names.ValidateEvent(eventName, nameof(eventName));
        int max = _broker.Limits.MaxEventNameLength;
        if (eventName.Length > max)
        {
            throw new ArgumentException(
                $"Event name '{eventName[..Math.Min(40, eventName.Length)]}…' is {eventName.Length} characters long; BrokerOptions.MaxEventNameLength allows {max}. Use a shorter event name. Nothing was published.",
                nameof(eventName));
        }
    }

    /// <summary>Tells the observer, if any, that a message entered the queue. Before any consumer can see it.</summary>
    private void NotePublished(Message<T> message, int subscriptions) =>
        _observer?.Published(Name, IsDeadLetterQueue, message.Id, message.Sequence, message.Event, message.Payload, message.Headers, subscriptions);

    /// <summary>
    /// Counts a message sent into the queue (messaging.client.sent.messages). Called after the subscriptions' locks are
    /// released: a MeterListener's callback is user code, and runs on this thread.
    /// </summary>
    private void RecordSent(Message<T> message)
    {
        if (!IsDeadLetterQueue)
        {
            _metrics.RecordSent(Name, message.Event);
        }
    }

    /// <summary>
    /// No subscription matches the event: under interest retention nothing keeps the message, so it is
    /// not even built. It still takes a sequence and is counted, so that publishing into the void shows
    /// in the snapshot.
    /// </summary>
    private PublishReceipt PublishUnrouted(in Draft draft)
    {
        long sequence = Interlocked.Increment(ref _sequence.Value);
        CountUnrouted(draft.Event);
        Guid id = draft.Id == Guid.Empty ? MakeId(sequence) : draft.Id;
        _observer?.Published(Name, IsDeadLetterQueue, id, sequence, draft.Event, draft.Payload, draft.Headers, 0);
        _metrics.RecordSent(Name, draft.Event);
        if (AutoDeclared)
        {
            WarnUnroutedOnce(draft.Event);
        }

        return new PublishReceipt(Name, id, sequence);
    }

    /// <summary>A published message was not kept: nothing matched it. Counted in the snapshot and the unrouted counter.</summary>
    private void CountUnrouted(string eventName)
    {
        Interlocked.Increment(ref _unrouted);
        _metrics.RecordUnrouted(Name, eventName);
    }

    /// <summary>
    /// The first message that routes nowhere in a queue declared on first use is logged as a warning: such a queue is
    /// often a misspelt name, whose messages would otherwise vanish without a sound. Once per queue, so a stream of
    /// unrouted publishes costs a volatile read each after the first (their number is in the counters). Called without
    /// any lock held: a logger is user code.
    /// </summary>
    private void WarnUnroutedOnce(string eventName)
    {
        if (Volatile.Read(ref _unroutedWarned) == 0 && Interlocked.Exchange(ref _unroutedWarned, 1) == 0)
        {
            BrokerLog.UnroutedOnAutoDeclaredQueue(_broker.Logger, Name, eventName, Volatile.Read(ref _subscriptions).Length);
        }
    }

    /// <summary>
    /// Builds the message and hands it to every subscription on the route. The caller holds one unit of
    /// depth for it. The hot path: one allocation (the envelope) and one lock per subscription.
    /// </summary>
    private PublishReceipt Deliver(Route route, in Draft draft, out long ticket)
    {
        if (_writer is not null)
        {
            // Durable: stored first, handed to subscriptions after the commit (OnCommitted).
            return Stage(draft, out ticket);
        }

        ticket = 0;

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
                    NotePublished(message, 1);
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

        RecordSent(message);
        if (receivers == 0)
        {
            // The route went stale: every subscription on it ended while we published. The message
            // was not kept; give back its depth and count it as unrouted.
            NotePublished(message, 0);
            CountUnrouted(message.Event);
            FreeDepth();
        }

        foreach (SubscriptionState<T> subscription in subscriptions)
        {
            if (subscription.HasPendingWork)
            {
                FinishPendingWork(subscription);
            }
        }

        return new PublishReceipt(Name, message.Id, message.Sequence);
    }

    /// <summary>
    /// Hands a message to every subscription that takes it: not ended, and for a committed durable message,
    /// created before its sequence was taken. Called with all of them locked.
    /// </summary>
    /// <returns>How many took it.</returns>
    private int HandOverLocked(SubscriptionState<T>[] subscriptions, Message<T> message, bool committed)
    {
        int receivers = 0;
        foreach (SubscriptionState<T> subscription in subscriptions)
        {
            receivers += Takes(subscription, message, committed) ? 1 : 0;
        }

        if (receivers > 0)
        {
            NotePublished(message, receivers);
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
    private static void EnterAll(SubscriptionState<T>[] subscriptions)
    {
        foreach (SubscriptionState<T> subscription in subscriptions)
        {
            subscription.Gate.Enter();
        }
    }

    private static void ExitAll(SubscriptionState<T>[] subscriptions)
    {
        for (int i = subscriptions.Length - 1; i >= 0; i--)
        {
            subscriptions[i].Gate.Exit();
        }
    }

    /// <summary>Takes the next sequence and builds the envelope. Called with the route's subscriptions locked, so that sequence order is delivery order.</summary>
    private Message<T> CreateMessage(in Draft draft, long timestamp)
    {
        long sequence = Interlocked.Increment(ref _sequence.Value);
        return new Message<T>(draft.Id == Guid.Empty ? MakeId(sequence) : draft.Id, Name, draft.Event, draft.Payload, sequence, timestamp, draft.Headers, draft.ExpiresAt);
    }

    /// <summary>DropOldest: takes one unit of depth, evicting waiting messages to make room.</summary>
    private void MakeRoomByDropping()
    {
        List<MessageDroppedEventArgs>? dropped = null;
        List<OverflowDeadLetter>? deadLetters = _deadLetterDrops ? [] : null;
        lock (_gate)
        {
            // Evict until there is room (a concurrent publisher may take the room an eviction
            // frees). If nothing waits in any backlog, every retained message is in flight, and the
            // new one is admitted over the bound (documented on OverflowPolicy.DropOldest).
            while (!_depth.TryAdmit())
            {
                if (!EvictOldestWaitingLocked(ref dropped, deadLetters))
                {
                    _depth.ForceAdmit();
                    break;
                }
            }
        }

        DeadLetterOverflow(deadLetters);
        RaiseDropped(dropped);
    }

    private async ValueTask<PublishReceipt> WaitForRoomAsync(Draft draft, TimeSpan timeout, CancellationToken cancellationToken)
    {
        PublishWaiter waiter = EnqueueWaiter();
        try
        {
            await waiter.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception error) when (error is OperationCanceledException or TimeoutException)
        {
            if (TryAbandon(waiter))
            {
                // Gave up before any room was granted: nothing was reserved, nothing was published.
                if (error is TimeoutException)
                {
                    throw Full(timeout);
                }

                throw;
            }

            if (!waiter.Task.IsCompletedSuccessfully)
            {
                // The queue closed first and failed the waiter; nothing was reserved.
                throw _broker.CreateDisposedException();
            }

            // Room was granted in the same instant. On a timeout, keep it and publish; on
            // cancellation, pass it on, because a cancelled call must change nothing.
            if (error is OperationCanceledException)
            {
                FreeDepth();
                throw;
            }
        }

        // One unit of depth is ours. The broker may have closed, or the route changed, meanwhile.
        if (_closed)
        {
            FreeDepth();
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
            Route route = draft.Target is { IsDeleted: false } target ? new Route(draft.Event, [target], Volatile.Read(ref _routeVersion)) : GetRoute(draft.Event);
            if (route.Subscriptions.Length == 0)
            {
                FreeDepth();
                return PublishUnrouted(draft);
            }

            receipt = Deliver(route, draft, out ticket);
        }

        if (ticket != 0)
        {
            await _writer!.WaitForCommitAsync(ticket).ConfigureAwait(false);
        }

        return receipt;
    }

    private PublishWaiter EnqueueWaiter()
    {
        var waiter = new PublishWaiter();
        lock (_waitersGate)
        {
            if (_closed)
            {
                waiter.TrySetException(_broker.CreateDisposedException());
                return waiter;
            }

            waiter.Node = _waiters.AddLast(waiter);

            // Full fence, then look at the depth again: a consumer that freed room just now may have
            // read the waiter count before this increment. One of the two sees the other.
            Interlocked.Increment(ref _waiterCount);
            GrantWaitersLocked();
        }

        return waiter;
    }

    /// <summary>
    /// A waiter gives up (timeout or cancellation). It leaves the line at once, so abandoned waiters
    /// never pile up while the queue stays full. False when room was granted (or the queue closed) first.
    /// </summary>
    private bool TryAbandon(PublishWaiter waiter)
    {
        lock (_waitersGate)
        {
            if (!waiter.TryAbandon())
            {
                return false;
            }

            if (waiter.Node?.List is not null)
            {
                _waiters.Remove(waiter.Node);
                Interlocked.Decrement(ref _waiterCount);
            }

            return true;
        }
    }

    /// <summary>
    /// Gives room to waiting publishers in arrival order. The room is taken first and then handed over,
    /// so a publisher on the fast path can never slip in between and push the depth past the bound.
    /// Waiters leave the line only under this lock (granted, abandoned, or failed on close), so every
    /// waiter still in the line can be granted.
    /// </summary>
    private void GrantWaitersLocked()
    {
        while (_waiters.First is { } first && _depth.TryAdmit())
        {
            _waiters.RemoveFirst();
            Interlocked.Decrement(ref _waiterCount);
            bool granted = first.Value.TryGrant();
            Debug.Assert(granted, "a waiter that completed left the line under the same lock");
        }
    }

    /// <summary>Frees one unit of depth and wakes a waiting publisher if there is one. Called with no lock held, or with only the queue's _gate.</summary>
    private void FreeDepth()
    {
        _depth.Release();
        if (Volatile.Read(ref _waiterCount) > 0)
        {
            lock (_waitersGate)
            {
                GrantWaitersLocked();
            }
        }
    }

    /// <summary>A subscription lets go of a message (settled, dropped or abandoned). Called with no lock held, or with only the queue's _gate.</summary>
    /// <param name="message">The message.</param>
    /// <param name="subscription">The durable subscription that settled it, to tell the store; null when none did (an ephemeral or deleted subscription let go).</param>
    internal void Release(Message<T> message, string? subscription = null)
    {
        bool last = message.Release();
        if (last && _log is null)
        {
            FreeDepth();
        }

        if (_writer is not null)
        {
            StoreReleased(message, subscription, last);
        }

        // Last: the test harness wakes a waiting test on this call, and that test reads the snapshot at once, so the
        // room the message held must already be free.
        _observer?.Released(Name, message.Id);
    }

    private QueueFullException Full(TimeSpan? waited) => new(
        Name,
        waited is { } timeout
            ? string.Create(CultureInfo.InvariantCulture, $"Queue '{Name}' stayed full (MaxMessages = {_maxMessages}) for the whole publish timeout of {timeout}; nothing was published. Let its subscribers catch up, raise MaxMessages, or pass a longer PublishOptions.Timeout.")
            : string.Create(CultureInfo.InvariantCulture, $"Queue '{Name}' is full (MaxMessages = {_maxMessages}) and its overflow policy is Reject; nothing was published. Retry later, let its subscribers catch up, raise MaxMessages, or declare the queue with OverflowPolicy.Wait or DropOldest."),
        null);

    private Guid MakeId(long sequence) => new(
        _idA,
        _idB,
        _idC,
        (byte)(0x80 | ((sequence >> 56) & 0x3F)), // RFC 9562 variant bits
        (byte)(sequence >> 48),
        (byte)(sequence >> 40),
        (byte)(sequence >> 32),
        (byte)(sequence >> 24),
        (byte)(sequence >> 16),
        (byte)(sequence >> 8),
        (byte)sequence);

    private static IReadOnlyDictionary<string, string> FreezeHeaders(IReadOnlyDictionary<string, string>? headers, int maxLength, string paramName = "options")
    {
        if (headers is null || headers.Count == 0)
        {
            return FrozenDictionary<string, string>.Empty;
        }

        long length = 0;
        foreach (KeyValuePair<string, string> header in headers)
        {
            // The W3C trace context, within its standard's bounds, is not counted: turning tracing on must not make a
            // publish that fits fail. Longer values under those names count like any header.
            if (!BrokerTelemetry.IsBoundedTraceContext(header.Key, header.Value))
            {
                length += (header.Key?.Length ?? 0) + (header.Value?.Length ?? 0);
            }

            if (string.IsNullOrEmpty(header.Key))
            {
                throw new ArgumentException("A header name is null or empty; give every header a name.", paramName);
            }

            if (header.Value is null)
            {
                throw new ArgumentException($"Header '{header.Key}' has a null value; use an empty string for an empty value.", paramName);
            }
        }

        if (length > maxLength)
        {
            throw new ArgumentException(
                $"The headers hold {length} characters (names and values); BrokerOptions.MaxHeadersLength allows {maxLength}. Send fewer or shorter headers, or raise the limit. Nothing was published.",
                paramName);
        }

        // Immutable dictionaries cannot change under us; anything else is copied so that the
        // envelope stays immutable.
        return headers is FrozenDictionary<string, string> or ImmutableDictionary<string, string>
            ? headers
            : headers.ToFrozenDictionary(StringComparer.Ordinal);
    }

    // ---------------------------------------------------------------- routing

    /// <summary>
    /// The subscriptions an event routes to. Cached per event name and recomputed when subscriptions
    /// come or go. A publish that races with a subscribe may use the route from just before it: a
    /// subscription receives the messages published after its subscribe call returned.
    /// </summary>
    private Route GetRoute(string eventName)
    {
        int version = Volatile.Read(ref _routeVersion);
        Route? route = Volatile.Read(ref _lastRoute);
        if (route is not null && ReferenceEquals(route.Event, eventName) && route.Version == version)
        {
            return route;
        }

        if (Volatile.Read(ref _routes).TryGetValue(eventName, out route) && route.Version == version)
        {
            Volatile.Write(ref _lastRoute, route);
            return route;
        }

        lock (_gate)
        {
            return ComputeRouteLocked(eventName);
        }
    }

    private Route ComputeRouteLocked(string eventName)
    {
        if (_routes.TryGetValue(eventName, out Route? route) && route.Version == _routeVersion)
        {
            _lastRoute = route;
            return route;
        }

        // First sight of this event name since the subscriptions last changed: validate, match, cache.
        ValidateEvent(eventName);
        var matches = new List<SubscriptionState<T>>();
        foreach (SubscriptionState<T> subscription in _subscriptions)
        {
            if (subscription.Matches(eventName))
            {
                matches.Add(subscription);
            }
        }

        route = new Route(eventName, [.. matches], _routeVersion);

        // Copy on write: readers hold the old dictionary. Routes of an older version are left behind, and
        // past the cap the cache starts over, so that it stays bounded whatever event names come in.
        var routes = new Dictionary<string, Route>(Math.Min(_routes.Count + 1, MaxCachedRoutes), StringComparer.Ordinal);
        if (_routes.Count < MaxCachedRoutes)
        {
            foreach (KeyValuePair<string, Route> cached in _routes)
            {
                if (cached.Value.Version == _routeVersion)
                {
                    routes.Add(cached.Key, cached.Value);
                }
            }
        }

        routes[eventName] = route;
        Volatile.Write(ref _routes, routes);
        Volatile.Write(ref _lastRoute, route);
        return route;
    }

    // ---------------------------------------------------------------- overflow

    /// <summary>
    /// DropOldest under interest retention: removes the oldest message that waits in any backlog from
    /// every backlog that holds it, and stops counting it towards the depth. Copies in flight with
    /// consumers are left alone and settle normally.
    /// </summary>
    /// <returns>False when no backlog held anything to drop.</returns>
    private bool EvictOldestWaitingLocked(ref List<MessageDroppedEventArgs>? dropped, List<OverflowDeadLetter>? deadLetters)
    {
        Message<T>? oldest = null;
        foreach (SubscriptionState<T> subscription in _subscriptions)
        {
            Message<T>? head = subscription.PeekOldestWaiting();
            if (head is not null && (oldest is null || head.Sequence < oldest.Sequence))
            {
                oldest = head;
            }
        }

        if (oldest is null)
        {
            return false;
        }

        // Nothing waits that is older than the oldest head, so each backlog drops at most this message.
        bool anyDropped = DropWaitingUpToLocked(oldest.Sequence, DropReason.QueueOverflow, ref dropped, deadLetters);
        if (anyDropped)
        {
            // Each release above freed the depth if it let go of the last reference. If consumers
            // still hold the message in flight, Evict stops it counting now instead. Exactly one of the
            // two frees the depth, and neither does if an earlier eviction already stopped it counting.
            if (oldest.Evict())
            {
                FreeDepth();
            }

            Interlocked.Increment(ref _dropped);
        }

        // A consumer may have taken it between the look and the drop; the caller looks again.
        return true;
    }

    /// <summary>
    /// Drops every waiting message up to <paramref name="sequence"/> from every subscription, raising one event
    /// each. With <paramref name="deadLetters"/>, each drop is also kept there, to be dead-lettered after the locks.
    /// </summary>
    private bool DropWaitingUpToLocked(long sequence, DropReason reason, ref List<MessageDroppedEventArgs>? dropped, List<OverflowDeadLetter>? deadLetters = null)
    {
        bool any = false;
        foreach (SubscriptionState<T> subscription in _subscriptions)
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
                    _observer?.Referenced(1);
                    deadLetters.Add(new OverflowDeadLetter(held, subscription.Name, subscription.Key));
                }

                Release(message, subscription.Name);
            }
        }

        return any;
    }

    /// <summary>A message a subscription lost for lack of room, for a queue that dead-letters its drops.</summary>
    private readonly record struct OverflowDeadLetter(Consumer<T>.Unsettled Held, string? Subscription, SubscriptionKey SubscriptionKey);

    /// <summary>Dead-letters what overflow dropped (<see cref="QueueOptions.DeadLetterDrops"/>). Called without any lock.</summary>
    private void DeadLetterOverflow(List<OverflowDeadLetter>? deadLetters)
    {
        foreach (OverflowDeadLetter deadLetter in deadLetters ?? [])
        {
            DeadLetter(deadLetter.Held.Message, deadLetter.Held.Deliveries, DeadLetterReasons.Overflow, null, deadLetter.Subscription, deadLetter.SubscriptionKey, deadLetter.Held.History);
            _observer?.Released(Name, deadLetter.Held.Message.Id);
        }
    }

    private void RaiseDropped(List<MessageDroppedEventArgs>? dropped)
    {
        if (dropped is not null)
        {
            _broker.RaiseMessageDropped(dropped);
        }
    }

    // ---------------------------------------------------------------- dead letters

    /// <summary>
    /// Moves a message into this queue's dead-letter queue, with why and its history in headers. Called
    /// without any lock. Without a dead-letter queue (in a dead-letter queue itself, or a queue declared
    /// with DeadLetters off) the message has nowhere to go: it is dropped, counted and raised.
    /// </summary>
    internal void DeadLetter(Message<T> message, int attempts, string reason, string? detail, string? subscription, SubscriptionKey? subscriptionKey, DeliveryHistory? history)
    {
        if (DeadLetterQueue is null)
        {
            DropReason dropReason = reason == DeadLetterReasons.Expired ? DropReason.Expired : DropReason.DeadLetterDiscarded;
            Interlocked.Increment(ref _dropped);
            _broker.RaiseMessageDropped([new MessageDroppedEventArgs(Name, subscription ?? string.Empty, message.Id, message.Sequence, message.Event, dropReason)]);
            return;
        }

        Interlocked.Increment(ref _deadLettered);
        _observer?.Settled(ObservedSettlement.DeadLettered, Name, subscription, subscriptionKey, message.Id, message.Sequence, message.Event, message.Payload, attempts, null, reason);
        DateTimeOffset now = _time.GetUtcNow();
        long nowTimestamp = _time.GetTimestamp();
        var headers = new Dictionary<string, string>(message.Headers, StringComparer.Ordinal)
        {
            [MessageHeaders.DeadLetterReason] = reason,
            [MessageHeaders.SourceQueue] = Name,
            [MessageHeaders.SourceSequence] = message.Sequence.ToString(CultureInfo.InvariantCulture),
            [MessageHeaders.SourceSubscription] = subscription ?? string.Empty,
            [MessageHeaders.Attempts] = attempts.ToString(CultureInfo.InvariantCulture),
            [MessageHeaders.DeadLetteredAt] = now.ToString("O", CultureInfo.InvariantCulture),
        };
        if (!string.IsNullOrEmpty(detail))
        {
            headers[MessageHeaders.DeadLetterDetail] = detail;
        }

        if (history is not null)
        {
            // History times are monotonic timestamps; turn them into wall-clock times relative to now.
            headers[MessageHeaders.FirstDeliveredAt] = (now - _time.GetElapsedTime(history.FirstDeliveredAt, nowTimestamp)).ToString("O", CultureInfo.InvariantCulture);
            headers[MessageHeaders.LastDeliveredAt] = (now - _time.GetElapsedTime(history.LastDeliveredAt, nowTimestamp)).ToString("O", CultureInfo.InvariantCulture);
            if (history.LastErrorType is { } errorType)
            {
                headers[MessageHeaders.LastExceptionType] = errorType;
                headers[MessageHeaders.LastExceptionMessage] = history.LastErrorMessage ?? string.Empty;
            }
        }

        // A dead-letter queue evicts its oldest dead letter when full: this never waits or fails, and it is
        // accepted while the broker shuts down, so that a draining consumer can still reject.
        try
        {
            DeadLetterQueue.TryAppend(new Draft(message.Event, message.Payload, headers.ToFrozenDictionary(StringComparer.Ordinal), message.Id), out _, force: true, out _);
            _metrics.RecordDeadLettered(Name, subscription, message.Event, reason);
            BrokerLog.DeadLettered(_broker.Logger, message.Id, message.Event, message.Sequence, Name, subscription ?? string.Empty, attempts, reason);
        }
        catch (Exception error) when (error is MessageStoreException or ArgumentException)
        {
            // A durable dead-letter queue whose store failed earlier, or a limit lowered since the message was accepted
            // (BrokerOptions.MaxPersistedPayloadSize, say). Dead-lettering runs in acks, nacks and timers, which must
            // not throw: the dead letter is dropped, counted and raised instead.
            Interlocked.Decrement(ref _deadLettered);
            Interlocked.Increment(ref _dropped);
            _broker.RaiseMessageDropped([new MessageDroppedEventArgs(Name, subscription ?? string.Empty, message.Id, message.Sequence, message.Event, DropReason.DeadLetterDiscarded)]);
        }
    }

    // ---------------------------------------------------------------- replay

    /// <summary>Dead-letter header names the broker writes; a replayed message leaves them behind.</summary>
    private static readonly HashSet<string> DeadLetterHeaders = new(StringComparer.Ordinal)
    {
        MessageHeaders.DeadLetterReason, MessageHeaders.DeadLetterDetail, MessageHeaders.SourceQueue, MessageHeaders.SourceSequence,
        MessageHeaders.SourceSubscription, MessageHeaders.Attempts, MessageHeaders.DeadLetteredAt, MessageHeaders.FirstDeliveredAt,
        MessageHeaders.LastDeliveredAt, MessageHeaders.LastExceptionType, MessageHeaders.LastExceptionMessage,
    };

    public override async ValueTask<int> ReplayDeadLettersAsync(string? filter, int maxMessages, CancellationToken cancellationToken)
    {
        BrokerQueue<T> deadLetters = DeadLetterQueue ?? throw new InvalidOperationException(
            $"Queue '{Name}' has no dead-letter queue (it was declared with QueueOptions.DeadLetters off), so there is nothing to replay.");
        TopicFilter? topic = filter is null ? null : TopicFilter.Parse(filter);
        await _replayGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            int moved = 0;
            foreach (Message<T> deadLetter in deadLetters.PeekDeadLetters(topic, maxMessages))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!deadLetters.ContainsDeadLetter(deadLetter))
                {
                    continue; // evicted by the dead-letter queue's bound meanwhile
                }

                // Back to the durable subscription that dead-lettered it, if it still exists: the others
                // settled the message already. Otherwise (an ephemeral subscription, since ended, or one
                // deleted) it is published anew, to every subscription that matches it.
                var draft = new Draft(deadLetter.Event, deadLetter.Payload, ReplayHeaders(deadLetter.Headers), deadLetter.Id, Target: SourceSubscriptionOf(deadLetter));

                // Published first, removed second: a failure in between leaves a dead letter, never nothing.
                try
                {
                    await PublishAsync(draft, _publishTimeout, cancellationToken).ConfigureAwait(false);
                }
                catch (QueueFullException full) when (moved > 0)
                {
                    throw new QueueFullException(
                        Name,
                        string.Create(CultureInfo.InvariantCulture, $"Replay moved {moved} dead letter(s) back into queue '{Name}' and then found it full; the rest are still in '{deadLetters.Name}'. Replay again once its subscribers have caught up. ({full.Message})"),
                        full);
                }

                deadLetters.RemoveDeadLetter(deadLetter);
                moved++;
            }

            return moved;
        }
        finally
        {
            _replayGate.Release();
        }
    }

    /// <summary>The durable subscription a dead letter came from, if it still exists.</summary>
    private SubscriptionState<T>? SourceSubscriptionOf(Message<T> deadLetter)
    {
        if (!deadLetter.Headers.TryGetValue(MessageHeaders.SourceSubscription, out string? name) || name.Length == 0)
        {
            return null;
        }

        lock (_gate)
        {
            return _durable.TryGetValue(name, out SubscriptionState<T>? subscription) && !subscription.IsDeleted ? subscription : null;
        }
    }

    private static FrozenDictionary<string, string> ReplayHeaders(IReadOnlyDictionary<string, string> headers)
    {
        var replayed = new Dictionary<string, string>(headers.Count, StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> header in headers)
        {
            if (!DeadLetterHeaders.Contains(header.Key))
            {
                replayed[header.Key] = header.Value;
            }
        }

        int count = headers.TryGetValue(MessageHeaders.ReplayCount, out string? previous) && int.TryParse(previous, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0;
        replayed[MessageHeaders.ReplayCount] = (count + 1).ToString(CultureInfo.InvariantCulture);
        return replayed.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>On a dead-letter queue: the oldest retained dead letters that match, up to a count.</summary>
    private List<Message<T>> PeekDeadLetters(TopicFilter? filter, int maxMessages)
    {
        Debug.Assert(_log is not null);
        var found = new List<Message<T>>();
        lock (_gate)
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

    private bool ContainsDeadLetter(Message<T> message)
    {
        Debug.Assert(_log is not null);
        lock (_gate)
        {
            return _log.Contains(message);
        }
    }

    /// <summary>On a dead-letter queue: removes a replayed dead letter from the log and from every backlog that still waits on it.</summary>
    private void RemoveDeadLetter(Message<T> message)
    {
        Debug.Assert(_log is not null);
        lock (_gate)
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

            foreach (SubscriptionState<T> subscription in _subscriptions)
            {
                if (subscription.RemoveWaiting(message))
                {
                    message.Release();
                    _observer?.Released(Name, message.Id);
                }
            }

            _writer?.TryPost(StoreOperation.Remove(Name, message.Sequence), _flush);
            _replayed++;
        }
    }

    // ---------------------------------------------------------------- subscriptions

    /// <param name="client">The owning client.</param>
    /// <param name="filters">The filters.</param>
    /// <param name="options">The options.</param>
    /// <param name="storeTicket">For a new durable subscription of a durable queue, the store ticket to wait for; 0 otherwise.</param>
    public Consumer<T> Subscribe(BrokerClient client, string[] filters, SubscriptionOptions options, out long storeTicket)
    {
        storeTicket = 0;
        long now = _time.GetTimestamp();
        List<Consumer<T>.Unsettled>? deadLetters = null;
        List<Consumer<T>>? takenOver;
        SubscriptionState<T>? subscription;
        Consumer<T> consumer;
        lock (_gate)
        {
            ThrowIfClosed();
            if (options.Name is { } name)
            {
                if (_durable.TryGetValue(name, out subscription))
                {
                    if (!subscription.HasFilters(filters))
                    {
                        throw new InvalidOperationException(
                            $"Durable subscription '{name}' on queue '{Name}' already exists with the filters [{string.Join(", ", subscription.FilterTexts)}], " +
                            $"not [{string.Join(", ", filters)}]. Subscribe with the same filters to reattach, use another name, or delete the subscription first.");
                    }
                }
                else
                {
                    subscription = CreateSubscriptionLocked(name, filters, options);
                    _durable.Add(name, subscription);
                    storeTicket = StoreSubscription(subscription);
                }
            }
            else
            {
                subscription = CreateSubscriptionLocked(null, filters, options);
            }

            consumer = subscription.Attach(client, options, now, ref deadLetters, out takenOver);
        }

        // Outside the lock: the consumers replaced by a TakeOver learn why, and starting from retained
        // messages may have passed the subscription's own bound.
        DeadLetterAll(deadLetters, subscription);
        foreach (Consumer<T> replaced in takenOver ?? [])
        {
            replaced.Finish(new SubscriptionClosedException(
                Name,
                subscription.Name,
                SubscriptionCloseReason.TakenOver,
                $"Another consumer took over durable subscription '{subscription.Name}' on queue '{Name}' (ExclusiveMode.TakeOver); what this one held unsettled was delivered to it again."));
        }

        FinishPendingWork(subscription);
        return consumer;
    }

    /// <summary>Creates and registers a subscription; one with a start position first gets the retained messages from there.</summary>
    private SubscriptionState<T> CreateSubscriptionLocked(string? name, string[] filters, SubscriptionOptions options, string paramName = "options")
    {
        StartPosition start = options.StartAt;
        if (!start.IsNew && _log is null)
        {
            throw new ArgumentException(
                $"Queue '{Name}' keeps messages only for the subscriptions that existed when they were published (Interest retention), so a new subscription can only start at new messages, not at {start}. " +
                "Declare the queue with QueueOptions.Retention = RetentionPolicy.Limits to let later subscriptions start from retained messages.",
                paramName);
        }

        var subscription = new SubscriptionState<T>(this, ++_lastSubscriptionId, name, filters, options.MaxBacklog, options.BacklogOverflow);

        // Under _storeGate, so no durable publish takes a sequence between reading it here and the
        // subscription joining the routes: every later sequence reaches it, now and after a restart.
        lock (_storeGate)
        {
            subscription.StartAfter = start.IsNew ? Volatile.Read(ref _sequence.Value) : StartFromLogLocked(subscription, start);
            AddSubscriptionLocked(subscription);
        }

        return subscription;
    }

    private void AddSubscriptionLocked(SubscriptionState<T> subscription)
    {
        // Ids only grow, so appending keeps the array in lock order.
        _subscriptions = [.. _subscriptions, subscription];
        Volatile.Write(ref _routeVersion, _routeVersion + 1);
    }

    private void RemoveSubscriptionLocked(SubscriptionState<T> subscription)
    {
        _subscriptions = Array.FindAll(_subscriptions, s => s != subscription);
        if (subscription.Name is { } name)
        {
            _durable.Remove(name);
            _writer?.TryPost(StoreOperation.DeleteSubscription(Name, name), _flush);
        }

        Volatile.Write(ref _routeVersion, _routeVersion + 1);
    }

    /// <summary>
    /// Detaches a consumer. A durable subscription takes back what the consumer held, to deliver
    /// again; an ephemeral one ends, and the messages it still held are released.
    /// </summary>
    internal void Detach(Consumer<T> consumer)
    {
        List<Message<T>>? abandoned = null;
        List<Consumer<T>.Unsettled>? deadLetters = null;
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            SubscriptionState<T> subscription = consumer.State;
            if (!subscription.Detach(consumer, now, ref abandoned, ref deadLetters))
            {
                return;
            }

            if (subscription.Name is null)
            {
                RemoveSubscriptionLocked(subscription);
            }
        }

        DeadLetterAll(deadLetters, consumer.State);
        ReleaseAbandoned(abandoned);
    }

    public override bool DeleteSubscription(string name)
    {
        List<Message<T>>? abandoned = null;
        lock (_gate)
        {
            if (!_durable.TryGetValue(name, out SubscriptionState<T>? subscription))
            {
                return false;
            }

            subscription.Delete(ref abandoned);
            RemoveSubscriptionLocked(subscription);
        }

        ReleaseAbandoned(abandoned);
        return true;
    }

    /// <summary>Dead-letters messages a leaving consumer held on their last attempt. Called without any lock.</summary>
    private void DeadLetterAll(List<Consumer<T>.Unsettled>? deadLetters, SubscriptionState<T> subscription)
    {
        foreach (Consumer<T>.Unsettled deadLetter in deadLetters ?? [])
        {
            DeadLetter(deadLetter.Message, deadLetter.Deliveries, DeadLetterReasons.MaxDeliveries, null, subscription.Name, subscription.Key, deadLetter.History);
            Release(deadLetter.Message, subscription.Name);
        }
    }

    /// <summary>
    /// Finishes what a subscription's own bound started while locks were held: releases and raises the
    /// messages it dropped, and cuts it loose if it asked for that. Called without any lock.
    /// </summary>
    private void FinishPendingWork(SubscriptionState<T> subscription)
    {
        if (!subscription.HasPendingWork)
        {
            return;
        }

        (List<Consumer<T>.Unsettled>? dropped, bool cutLoose) = subscription.TakePendingWork();
        List<Consumer<T>>? closed = null;
        if (cutLoose)
        {
            long now = _time.GetTimestamp();
            lock (_gate)
            {
                closed = subscription.CutLoose(now, ref dropped);
                if (closed is not null)
                {
                    RemoveSubscriptionLocked(subscription);
                }
            }
        }

        List<MessageDroppedEventArgs>? events = null;
        foreach (Consumer<T>.Unsettled held in dropped ?? [])
        {
            Message<T> message = held.Message;
            (events ??= []).Add(new MessageDroppedEventArgs(Name, subscription.Name ?? string.Empty, message.Id, message.Sequence, message.Event, DropReason.SubscriptionOverflow));
            if (_deadLetterDrops)
            {
                DeadLetter(message, held.Deliveries, DeadLetterReasons.Overflow, null, subscription.Name, subscription.Key, held.History);
            }

            Release(message, subscription.Name);
        }

        if (closed is not null)
        {
            BrokerLog.CutLoose(_broker.Logger, subscription.Name ?? "(ephemeral)", Name, closed.Count, dropped?.Count ?? 0);
        }

        foreach (Consumer<T> consumer in closed ?? [])
        {
            consumer.Finish(new SubscriptionClosedException(
                Name,
                subscription.Name,
                SubscriptionCloseReason.CutLoose,
                $"Subscription '{subscription.Name ?? "(ephemeral)"}' on queue '{Name}' fell further behind than its MaxBacklog and was cut loose (BacklogOverflowPolicy.Disconnect); the messages it held were dropped."));
        }

        RaiseDropped(events);
    }

    /// <summary>Releases messages whose subscription ended while it still held them. Called without any lock.</summary>
    internal void ReleaseAbandoned(List<Message<T>>? abandoned)
    {
        if (abandoned is null)
        {
            return;
        }

        Interlocked.Add(ref _abandoned, abandoned.Count);
        foreach (Message<T> message in abandoned)
        {
            Release(message);
        }
    }

    // ---------------------------------------------------------------- lifetime and snapshot

    public override void Close()
    {
        AbandonScheduled();
        lock (_waitersGate)
        {
            _closed = true;
            foreach (PublishWaiter waiter in _waiters)
            {
                waiter.TrySetException(_broker.CreateDisposedException());
            }

            _waiters.Clear();
            Volatile.Write(ref _waiterCount, 0);
        }
    }

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
            var subscriptions = new List<SubscriptionSnapshot>(_subscriptions.Length);
            foreach (SubscriptionState<T> subscription in _subscriptions)
            {
                subscriptions.Add(subscription.GetSnapshot());
            }

            int waiting = Volatile.Read(ref _waiterCount);

            long sequence = Interlocked.Read(ref _sequence.Value);
            return new QueueSnapshot
            {
                Name = Name,
                PayloadType = PayloadType,
                IsDeadLetterQueue = IsDeadLetterQueue,
                MaxMessages = _maxMessages,
                Overflow = _overflow,
                Depth = _log?.Count ?? _depth.Depth,
                LastSequence = sequence,
                Published = sequence,
                Unrouted = Interlocked.Read(ref _unrouted),
                Dropped = Interlocked.Read(ref _dropped),
                Abandoned = Interlocked.Read(ref _abandoned),
                DeadLettered = Interlocked.Read(ref _deadLettered),
                Replayed = _replayed,
                Retention = _log is null ? RetentionPolicy.Interest : RetentionPolicy.Limits,
                Scheduled = _scheduled.Count,
                Deduplicated = Interlocked.Read(ref _deduplicated),
                WaitingPublishers = waiting,
                Subscriptions = subscriptions,
            };
        }
    }
}
