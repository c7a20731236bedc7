using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace MessageQueue;

/// <summary>
/// One attached reader of a subscription: a ring of deliveries handed to it plus the table of
/// deliveries it has read and not settled (the pending-ack table). This is the <see cref="Subscription{T}"/>
/// users read from.
/// </summary>
/// <remarks>
/// <para><b>Two sides.</b> The publisher side (<see cref="_publisher"/>) changes only under the subscription's lock, when a message is handed over.
/// The consumer side (<see cref="_reader"/> and the pending table under <see cref="_tableGate"/>, and
/// <see cref="_settled"/> on a cache line of its own) changes only when deliveries are read and settled. In steady state neither
/// side writes what the other reads, so a publisher and a consumer on two cores do not fight over
/// cache lines. A delivery enters the pending table when it is read, not when it is pushed; a
/// delivery that sits unread in the ring is still in flight and still counts against MaxInFlight.</para>
/// <para><b>Pending table.</b> A slot array with a free list. A delivery's token is the slot index plus
/// the slot's generation, which changes every time the slot is freed or its delivery is nacked; a token
/// whose generation no longer matches is a delivery that was already settled or taken back, and settling
/// it again is a harmless no-op. Nothing is allocated per delivery: the slot array grows by doubling up to
/// MaxInFlight and is reused.</para>
/// <para><b>Time.</b> A slot can carry a due time: the ack deadline of a read delivery, or the end of a
/// nacked delivery's backoff (the message keeps its slot, and so its place, while it waits). One timer
/// per consumer, created on first need, fires at the earliest due time; it is armed under the table's lock.</para>
/// <para><b>Ring.</b> Deliveries travel from the publisher to the reader through a single-producer,
/// single-consumer ring: the publisher writes a slot and then the pushed count; a reader, under the
/// table's lock, takes slots up to that count. There is no lock shared by the two sides. A delivery is
/// pushed only while pushed − settled &lt; MaxInFlight, and every settled delivery was read first, so
/// a ring of MaxInFlight slots (rounded up to a power of two) never overflows; it starts small and
/// doubles, under both locks, as deliveries in flight need it. Readers with nothing to read park in
/// <see cref="ReadWaiters"/>.</para>
/// </remarks>
internal sealed class Consumer<T> : Subscription<T>, IConsumer, IReadySource
{
    private const int InitialSlots = 16;
    private const long NoToken = -1;
    private const int InitialRing = 16;
    private const int MaxRing = 1 << 30;

    // Before parking, a reader looks again this many times, with this much spinning in between: about a
    // microsecond in all. Not on a single core, where spinning only delays the publisher it waits for.
    private const int SpinIterations = 10;
    private static readonly int SpinChecks = Environment.ProcessorCount > 1 ? 16 : 0;

    private readonly SubscriptionState<T> _state;
    private readonly BrokerClient _client;
    private readonly TimeProvider _time;
    private readonly SubscriptionOptions _options;
    private readonly ReadWaiters _waiters = new();
    private readonly int _maxInFlight;
    private readonly int _maxRing;
    private readonly int _refillBelow; // an ack refills from the backlog only when fewer unread deliveries than this are left
    private readonly int _maxDeliveries;
    private readonly bool _autoAck;
    private readonly bool _tracksCursor; // a durable subscription of a durable queue: first reads move its stored cursor
    private readonly long _ackTimeout; // in TimeProvider timestamp units; 0 for none
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Publisher side: written under the subscription's lock only. _publisher.Pushed is also the ring's write
    // position, published with a volatile write after the slot. Padded away from the reader's side.
    private PublisherLine _publisher;
    private Pushed[] _ring; // replaced only under both locks
    private volatile bool _completed; // no more deliveries: readers finish once the ring is empty

    // Consumer side. _settled counts deliveries that left this consumer for any reason (settled, or
    // taken back); Interlocked, so that its increment is the full fence the credit protocol needs.
    private PaddedCounter _settled;
    private readonly Lock _tableGate = new();

    // Where reads and settlements are reported (metrics, the test harness's observer).
    private readonly BrokerEvents _events;
    private ReaderLine _reader;
    private Slot[] _slots;
    private int[] _free;
    private bool _closed;
    private long _autoAcked; // auto-acked reads, counted without the lock
    private TaskCompletionSource? _drained;
    private int _parked; // slots waiting out a nack's backoff: no reader holds them. Changed under _tableGate.
    private ITimer? _timer;
    private long _timerDue; // when the timer fires next, as a timestamp; 0 when it is not armed

    public Consumer(SubscriptionState<T> state, BrokerClient client, SubscriptionOptions options, TimeProvider time)
    {
        _state = state;
        _client = client;
        _time = time;
        _events = state.Queue.Events;
        _options = options;
        _maxInFlight = Math.Min(options.MaxInFlight, MaxRing);
        _refillBelow = Math.Max(2, _maxInFlight / 4);
        _maxRing = (int)BitOperations.RoundUpToPowerOf2((uint)_maxInFlight);
        _ring = new Pushed[Math.Min(_maxRing, InitialRing)];
        _maxDeliveries = options.MaxDeliveries;
        _autoAck = options.AutoAck;
        _tracksCursor = state.Queue.IsDurable && state.Name is not null;
        _ackTimeout = options.AckTimeout == Timeout.InfiniteTimeSpan ? 0 : ToTimestampUnits(options.AckTimeout);
        int initial = Math.Min(options.MaxInFlight, InitialSlots);
        _slots = new Slot[initial];
        _free = new int[initial];
        for (int i = 0; i < initial; i++)
        {
            _free[i] = initial - 1 - i;
        }

        _reader.FreeCount = initial;
    }

    /// <summary>What travels through the ring: a message, its attempt number and, after a failure, its history.</summary>
    private readonly record struct Pushed(Message<T> Message, int Attempt, DeliveryHistory? History);

    private struct Slot
    {
        public Message<T>? Message;
        public int Attempt;
        public int Generation;
        public long ReadAt;
        public long Due;       // 0: none; otherwise the ack deadline, or the end of the backoff when Waiting
        public bool Waiting;   // nacked, waiting out its backoff before it goes back to the subscription
        public DeliveryHistory? History;
    }

    /// <summary>A delivery that left this consumer without being acked, and what happens to it next.</summary>
    internal readonly record struct Unsettled(Message<T> Message, int Deliveries, DeliveryHistory? History);

    public SubscriptionState<T> State => _state;

    public override string Queue => _state.Queue.Name;

    public override string? Name => _state.Name;

    public override IReadOnlyList<string> Filters => _state.FilterTexts;

    public override Task Completion => _completion.Task;

    public BrokerClient Client => _client;

    public int MaxDeliveries => _maxDeliveries;

    /// <summary>True while this consumer waits to take over an exclusive subscription. Set under the subscription's lock.</summary>
    public bool IsStandby { get; set; }

    public ConsumerCounters Counters
    {
        get
        {
            lock (_tableGate)
            {
                ConsumerCounters counters = _reader.Counters;
                counters.Acked += Interlocked.Read(ref _autoAcked);
                return counters;
            }
        }
    }

    /// <summary>Deliveries pushed and not yet settled. Called under the subscription's lock.</summary>
    public int InFlightLocked => (int)(_publisher.Pushed - Volatile.Read(ref _settled.Value));

    // ---------------------------------------------------------------- publisher side

    /// <summary>True while this consumer may be given another delivery. Called under the subscription's lock.</summary>
    public bool HasCreditLocked()
    {
        if (_publisher.Stopped)
        {
            return false;
        }

        if (_publisher.Pushed - _publisher.SettledSeen < _maxInFlight)
        {
            return true;
        }

        // Our copy of the settled count says full; read the real one. This is the only place the
        // publisher side reads a consumer-side cache line.
        _publisher.SettledSeen = Volatile.Read(ref _settled.Value);
        return _publisher.Pushed - _publisher.SettledSeen < _maxInFlight;
    }

    /// <summary>Gives this consumer a delivery. Called under the subscription's lock, only after <see cref="HasCreditLocked"/>.</summary>
    public void PushLocked(Message<T> message, int attempt, DeliveryHistory? history)
    {
        Debug.Assert(!_publisher.Stopped && _publisher.Pushed - Volatile.Read(ref _settled.Value) < _maxInFlight);
        long pushed = _publisher.Pushed;
        Pushed[] ring = _ring;
        if (pushed - _publisher.SettledSeen >= ring.Length)
        {
            // Unread deliveries are at most pushed − settled: full only if that reaches the ring's size.
            _publisher.SettledSeen = Volatile.Read(ref _settled.Value);
            if (pushed - _publisher.SettledSeen >= ring.Length)
            {
                ring = GrowRing();
            }
        }

        ring[(int)pushed & (ring.Length - 1)] = new Pushed(message, attempt, history);
        Volatile.Write(ref _publisher.Pushed, pushed + 1);

        // The fence orders the write above before the read of the flag; a parking reader does the opposite.
        Interlocked.MemoryBarrier();
        if (_waiters.IsArmed)
        {
            _waiters.Wake(canRead: true);
        }
    }

    /// <summary>Doubles the ring, keeping unread deliveries at their positions. Under the subscription's lock; takes the table's.</summary>
    private Pushed[] GrowRing()
    {
        lock (_tableGate)
        {
            Pushed[] old = _ring;
            Debug.Assert(old.Length < _maxRing, "MaxInFlight bounds the deliveries in the ring");
            var grown = new Pushed[old.Length * 2];
            for (long position = _reader.Read; position < _publisher.Pushed; position++)
            {
                grown[(int)position & (grown.Length - 1)] = old[(int)position & (old.Length - 1)];
            }

            _ring = grown;
            return grown;
        }
    }

    /// <summary>Takes the next unread delivery out of the ring. Under the table's lock.</summary>
    private bool TryTakeFromRingLocked(out Pushed pushed)
    {
        long read = _reader.Read;
        if (read == _reader.PushedSeen)
        {
            _reader.PushedSeen = Volatile.Read(ref _publisher.Pushed);
            if (read == _reader.PushedSeen)
            {
                pushed = default;
                return false;
            }
        }

        Pushed[] ring = _ring;
        ref Pushed slot = ref ring[(int)read & (ring.Length - 1)];
        pushed = slot;
        slot = default; // let the message go when it is settled
        _reader.Read = read + 1;
        return true;
    }

    /// <summary>Something to read, or the end: what a parked reader waits for.</summary>
    bool IReadySource.IsReady(out bool canRead)
    {
        if (Volatile.Read(ref _publisher.Pushed) != Volatile.Read(ref _reader.Read) && !_closed)
        {
            canRead = true;
            return true;
        }

        canRead = false;
        return _completed;
    }

    // ---------------------------------------------------------------- reading

    public override ValueTask<Delivery<T>> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<Delivery<T>>(cancellationToken);
        }

        return TryRead(out Delivery<T> delivery)
            ? new ValueTask<Delivery<T>>(delivery)
            : ReadSlowAsync(cancellationToken);
    }

    /// <summary>
    /// Waits until the ring has something, then takes it with <see cref="TryRead"/>, so that a delivery is
    /// always either in the ring or in the pending table, where a detach finds it. Pooled, so that
    /// waiting allocates nothing in steady state.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Delivery<T>> ReadSlowAsync(CancellationToken cancellationToken)
    {
        while (await WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (TryRead(out Delivery<T> delivery))
            {
                return delivery;
            }
        }

        throw new ChannelClosedException($"The subscription to queue '{Queue}' has ended; subscribe again to read more.");
    }

    /// <summary>
    /// Takes the next delivery out of the ring and enters it in the pending table, as one step under
    /// the table's lock, so that a detach (which takes the same lock) finds every delivery either still
    /// in the ring or in the table. With auto-ack the delivery is settled at once instead (at-most-once).
    /// A message whose time to live ran out is never handed over: it is dead-lettered, and the next one is read.
    /// </summary>
    public override bool TryRead(out Delivery<T> delivery)
    {
        // An empty ring is refilled from the subscription's backlog before giving up (see AfterLeaving).
        while (TryTakeNext(out Pushed pushed, out long token) || (_state.OnCreditFreed() && TryTakeNext(out pushed, out token)))
        {
            // Expiry is checked outside the lock, because it reads the clock; only messages with a time to live pay for it.
            if (pushed.Message.ExpiresAtTicks != 0 && _time.GetUtcNow().UtcTicks >= pushed.Message.ExpiresAtTicks)
            {
                Expire(pushed, token);
                continue;
            }

            delivery = new Delivery<T>(pushed.Message, pushed.Attempt, pushed.Attempt >= _maxDeliveries, this, token, trusted: true);
            _events.Read(_state, pushed.Message, pushed.Attempt, _autoAck);
            if (_autoAck)
            {
                Interlocked.Increment(ref _autoAcked);
                SettledOne();
                AfterLeaving(pushed.Message);
            }

            return true;
        }

        delivery = default;
        return false;
    }

    /// <summary>Reads one item from the ring and, unless auto-ack, gives it a slot. Under the table's lock.</summary>
    private bool TryTakeNext(out Pushed pushed, out long token)
    {
        // The clock is read only for an ack deadline, and before the lock. (Without a deadline, a failed
        // delivery's history records when it failed instead of when it was read: that keeps a clock read,
        // about 30 ns here, off every delivery.)
        long now = _ackTimeout == 0 ? 0 : _time.GetTimestamp();
        token = NoToken;
        lock (_tableGate)
        {
            if (_closed || !TryTakeFromRingLocked(out pushed))
            {
                pushed = default;
                return false;
            }

            if (!_autoAck)
            {
                if (_reader.FreeCount == 0)
                {
                    GrowLocked();
                }

                if (_tracksCursor && pushed.Attempt == 1)
                {
                    _state.NoteFirstDelivery(pushed.Message.Sequence);
                }

                int index = _free[--_reader.FreeCount];
                ref Slot slot = ref _slots[index];
                slot.Message = pushed.Message;
                slot.Attempt = pushed.Attempt;
                slot.ReadAt = now;
                slot.Waiting = false;
                slot.History = pushed.History;
                slot.Due = _ackTimeout == 0 ? 0 : now + _ackTimeout;
                token = ((long)slot.Generation << 32) | (uint)index;
                if (slot.Due != 0)
                {
                    ArmLocked(slot.Due, now);
                }
            }

            return true;
        }
    }

    /// <summary>An expired message was read: it leaves the consumer without being delivered, to the dead-letter queue.</summary>
    private void Expire(Pushed pushed, long token)
    {
        lock (_tableGate)
        {
            _reader.Counters.Expired++;
            if (_autoAck)
            {
                SettledOne();
            }
            else if (TryFindLocked(token, out int index))
            {
                FreeLocked(index, recordDelivery: false);
            }
        }

        _state.Queue.DeadLetter(pushed.Message, pushed.Attempt - 1, DeadLetterReasons.Expired, null, _state.Name, _state.Key, pushed.History);
        AfterLeaving(pushed.Message);
    }

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        IReadySource source = this;
        if (source.IsReady(out bool canRead) || (_state.OnCreditFreed() && source.IsReady(out canRead)))
        {
            return new ValueTask<bool>(canRead);
        }

        // Before parking, look again for a short, bounded moment: a busy publisher on another core
        // usually hands over the next delivery within it, and parking costs a thread-pool wake-up
        // (this is what takes a handler's hot latency under 2 µs; see benchmarks/README.md).
        for (int i = 0; i < SpinChecks; i++)
        {
            Thread.SpinWait(SpinIterations);
            if (source.IsReady(out canRead))
            {
                return new ValueTask<bool>(canRead);
            }
        }

        return _waiters.WaitAsync(this, cancellationToken);
    }

    private void GrowLocked()
    {
        int size = _slots.Length;
        int grown = (int)Math.Min((long)size * 2, _maxInFlight);
        Debug.Assert(grown > size, "at most MaxInFlight deliveries are read and unsettled");
        Array.Resize(ref _slots, grown);
        Array.Resize(ref _free, grown);
        for (int i = grown - 1; i >= size; i--)
        {
            _free[_reader.FreeCount++] = i;
        }
    }

    // ---------------------------------------------------------------- settling

    protected internal override ValueTask<bool> AckCoreAsync(long token, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        if (!TryTakeForAck(token, out Message<T>? message, out int attempt))
        {
            return new ValueTask<bool>(false);
        }

        _events.Acked(_state, message, attempt);
        AfterLeaving(message);
        return new ValueTask<bool>(true);
    }

    protected internal override ValueTask<bool> NackCoreAsync(long token, TimeSpan? delay, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        return new ValueTask<bool>(Nack(token, delay, error: null));
    }

    protected internal override ValueTask<bool> RejectCoreAsync(long token, string? reason, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        long now = _time.GetTimestamp();
        Unsettled rejected;
        lock (_tableGate)
        {
            if (!TryFindLocked(token, out int index))
            {
                return new ValueTask<bool>(false);
            }

            _reader.Counters.DeadLettered++;
            rejected = FreeLocked(index, recordDelivery: true, now);
        }

        _events.Rejected(_state, rejected.Message, rejected.Deliveries, reason);

        // Into the dead-letter queue before letting go, so the message is never in neither place.
        _state.Queue.DeadLetter(rejected.Message, rejected.Deliveries, DeadLetterReasons.Rejected, reason, _state.Name, _state.Key, rejected.History);
        AfterLeaving(rejected.Message);
        return new ValueTask<bool>(true);
    }

    protected internal override ValueTask<bool> ExtendCoreAsync(long token, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        long now = _ackTimeout == 0 ? 0 : _time.GetTimestamp();
        lock (_tableGate)
        {
            if (!TryFindLocked(token, out int index))
            {
                return new ValueTask<bool>(false);
            }

            if (_ackTimeout != 0)
            {
                // Later than before, so the timer (armed for the earliest due time) needs no change.
                _slots[index].Due = now + _ackTimeout;
            }

            _events.NoteExtended(_state, _slots[index].Message!, _slots[index].Attempt);

            return new ValueTask<bool>(true);
        }
    }

    /// <summary>
    /// A handler threw: nack with the backoff schedule, and keep the exception for the dead letter's headers.
    /// </summary>
    internal bool NackAfterHandlerFailure(in Delivery<T> delivery, Exception error) => Nack(delivery.Token, null, error);

    /// <summary>
    /// Nack: on the last attempt the message is dead-lettered; with no delay it goes straight back to the
    /// subscription, ahead of everything waiting there; with a delay it keeps its slot (and so its place
    /// and its share of MaxInFlight) until the timer gives it back.
    /// </summary>
    private bool Nack(long token, TimeSpan? delay, Exception? error)
    {
        if (!NackLocked(token, delay, error, out string? nackedEvent, out bool parked, out Unsettled? deadLetter))
        {
            return false;
        }

        // Counted once the locks are released (a MeterListener's callback is user code), before the nack returns, and
        // before the harness hears that the delivery waits out its delay: it may move the clock as soon as it does.
        // The timer is armed by now, so a parked redelivery is due at the nack's time plus its delay.
        _events.Nacked(_state, nackedEvent!, parked);

        if (deadLetter is { } dead)
        {
            DeadLetterAfterMaxDeliveries(dead);
        }

        return true;
    }

    /// <summary>The nack's part under the subscription's and the table's locks; the dead letter, if any, is left to the caller.</summary>
    private bool NackLocked(long token, TimeSpan? delay, Exception? error, out string? nackedEvent, out bool parked, out Unsettled? deadLetter)
    {
        long now = _time.GetTimestamp();
        nackedEvent = null;
        parked = false;
        deadLetter = null;
        lock (_state.Gate)
        {
            lock (_tableGate)
            {
                if (!TryFindLocked(token, out int index))
                {
                    return false;
                }

                ref Slot slot = ref _slots[index];
                _reader.Counters.Nacked++;
                if (error is not null)
                {
                    // Counted with the nack, before the redelivery or dead letter it causes can be seen.
                    _state.RecordHandlerFailure();
                }

                slot.History = DeliveryHistory.Record(slot.History, DeliveredAt(slot, now), error);
                TimeSpan wait = delay ?? _options.RedeliveryDelay(slot.Attempt);
                nackedEvent = slot.Message!.Event;
                _events.NoteNacked(_state, slot.Message, slot.Attempt, slot.Attempt < _maxDeliveries ? wait : null, error?.Message);

                if (slot.Attempt < _maxDeliveries && wait > TimeSpan.Zero)
                {
                    // Stale tokens from here on: the delivery is settled as far as its reader is concerned.
                    slot.Generation++;
                    slot.Waiting = true;
                    slot.Due = now + ToTimestampUnits(wait);
                    ArmLocked(slot.Due, now);
                    Volatile.Write(ref _parked, _parked + 1);
                    SignalIfDrained();

                    parked = true;
                    return true;
                }

                Unsettled nacked = FreeLocked(index, recordDelivery: false);
                if (nacked.Deliveries >= _maxDeliveries)
                {
                    _reader.Counters.DeadLettered++;
                    deadLetter = nacked;
                }
                else
                {
                    _state.ReturnLocked(nacked.Message, nacked.Deliveries, nacked.History);
                }
            }

            if (deadLetter is null)
            {
                _state.DispatchLocked();
            }
        }

        return true;
    }

    private void DeadLetterAfterMaxDeliveries(in Unsettled unsettled)
    {
        _state.Queue.DeadLetter(unsettled.Message, unsettled.Deliveries, DeadLetterReasons.MaxDeliveries, null, _state.Name, _state.Key, unsettled.History);
        AfterLeaving(unsettled.Message);
    }

    /// <summary>
    /// A message left this subscription: free its share of the queue, then refill from the backlog, unless
    /// the ring still holds plenty to read. Refilling takes the subscription's lock, which publishers hold
    /// on every publish; a consumer working through a backlog would otherwise take it on every ack. The
    /// refill is only put off, never lost: a reader that finds the ring empty refills before it waits
    /// (<see cref="TryRead"/>, <see cref="WaitToReadAsync"/>), and a reader parked on an empty ring is
    /// never behind a non-empty one.
    /// </summary>
    private void AfterLeaving(Message<T> message)
    {
        _state.Queue.Release(message, _state.Name);
        if (_state.HasWaiting && Volatile.Read(ref _publisher.Pushed) - Volatile.Read(ref _reader.Read) < _refillBelow)
        {
            _state.OnCreditFreed();
        }
    }

    // ---------------------------------------------------------------- pending table

    /// <summary>
    /// Takes an acked delivery out of the pending table. False when the token is stale: the delivery was
    /// settled already, nacked, timed out, or taken back when the consumer detached.
    /// </summary>
    private bool TryTakeForAck(long token, [NotNullWhen(true)] out Message<T>? message, out int attempt)
    {
        lock (_tableGate)
        {
            if (!TryFindLocked(token, out int index))
            {
                message = null;
                attempt = 0;
                return false;
            }

            // Lean on purpose (the ack path): only what a later read or a stale token checks is reset.
            ref Slot slot = ref _slots[index];
            message = slot.Message!;
            attempt = slot.Attempt;
            slot.Message = null;
            slot.History = null;
            slot.Due = 0;
            slot.Generation++;
            _free[_reader.FreeCount++] = index;
            _reader.Counters.Acked++;
            SettledOne();
            return true;
        }
    }

    /// <summary>Finds the slot of a pending delivery. A waiting (nacked) slot has moved on to a new generation.</summary>
    private bool TryFindLocked(long token, out int index)
    {
        index = (int)token;
        int generation = (int)(token >>> 32);
        Slot[] slots = _slots;
        return (uint)index < (uint)slots.Length
            && slots[index].Generation == generation
            && slots[index].Message is not null
            && !slots[index].Waiting;
    }

    /// <summary>
    /// Empties a slot and counts the delivery as gone from this consumer. With <paramref name="recordDelivery"/>
    /// the delivery goes into the message's history (it failed: timed out, rejected, or taken back on detach);
    /// a slot waiting out a backoff was recorded when it was nacked.
    /// </summary>
    private Unsettled FreeLocked(int index, bool recordDelivery, long now = 0)
    {
        ref Slot slot = ref _slots[index];
        if (slot.Waiting)
        {
            Volatile.Write(ref _parked, _parked - 1);
            _events.NoteUnparked(_state);
        }

        DeliveryHistory? history = recordDelivery && !slot.Waiting ? DeliveryHistory.Record(slot.History, DeliveredAt(slot, now), error: null) : slot.History;
        var freed = new Unsettled(slot.Message!, slot.Attempt, history);
        slot = new Slot { Generation = slot.Generation + 1 };
        _free[_reader.FreeCount++] = index;
        SettledOne();
        return freed;
    }

    /// <summary>When a delivery was read, or, without an ack deadline (no read time kept), the time it failed.</summary>
    private static long DeliveredAt(in Slot slot, long now) => slot.ReadAt != 0 ? slot.ReadAt : now;

    /// <summary>One delivery left this consumer. The increment is the full fence of the credit protocol.</summary>
    private void SettledOne()
    {
        Interlocked.Increment(ref _settled.Value);
        SignalIfDrained();
    }

    /// <summary>
    /// During shutdown, completes <see cref="WhenDrained"/> once no reader holds anything: everything pushed has
    /// left, or is waiting out a nack's backoff (which no handler is working on, so there is nothing to wait for;
    /// the broker takes those back when it closes the consumer). Settled is read before parked: a parked slot
    /// that is freed in between moves from one count to the other and is missed, never counted twice.
    /// </summary>
    private void SignalIfDrained()
    {
        if (Volatile.Read(ref _drained) is { } drained
            && Volatile.Read(ref _settled.Value) + Volatile.Read(ref _parked) == Volatile.Read(ref _publisher.Pushed))
        {
            drained.TrySetResult();
        }
    }

    // ---------------------------------------------------------------- deadlines and backoff

    /// <summary>Makes sure the timer fires no later than <paramref name="due"/>. Called under the table's lock.</summary>
    private void ArmLocked(long due, long now)
    {
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
                for (int i = 0; i < _slots.Length; i++)
                {
                    ref Slot slot = ref _slots[i];
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
                        _reader.Counters.TimedOut++;
                        _events.NoteTimedOut(_state, slot.Message, slot.Attempt);
                    }

                    Unsettled due = FreeLocked(i, recordDelivery: true, now);
                    if (due.Deliveries >= _maxDeliveries)
                    {
                        _reader.Counters.DeadLettered++;
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

    // ---------------------------------------------------------------- closing

    /// <summary>No new deliveries. Called under the subscription's lock.</summary>
    public void StopLocked() => _publisher.Stopped = true;

    /// <summary>
    /// Takes back the deliveries still sitting unread in the ring; they do not count as attempts.
    /// With <paramref name="complete"/>, also ends reading, so readers finish once they are
    /// done with what they hold. Called under the subscription's lock, after <see cref="StopLocked"/>.
    /// </summary>
    public List<Unsettled> TakeUnreadLocked(bool complete)
    {
        Debug.Assert(_publisher.Stopped);
        var unread = new List<Unsettled>();
        lock (_tableGate)
        {
            TakeUnreadUnderTableLock(unread, complete);
        }

        SignalIfDrained();
        return unread;
    }

    /// <summary>Drains the ring while holding the table's lock, so no reader is between taking and registering.</summary>
    private void TakeUnreadUnderTableLock(List<Unsettled> unread, bool complete)
    {
        int before = unread.Count;
        while (TryTakeFromRingLocked(out Pushed pushed))
        {
            unread.Add(new Unsettled(pushed.Message, pushed.Attempt - 1, pushed.History));
        }

        Interlocked.Add(ref _settled.Value, unread.Count - before);
        if (complete && !_completed)
        {
            _completed = true;
            _waiters.Wake(canRead: false);
        }
    }

    /// <summary>
    /// Takes back every delivery that was read and is neither settled nor waiting out a backoff, counted as not
    /// delivered (one attempt fewer). Called under the subscription's lock, after <see cref="StopLocked"/>.
    /// </summary>
    public List<Unsettled> TakeInFlightLocked()
    {
        Debug.Assert(_publisher.Stopped);
        var held = new List<Unsettled>();
        lock (_tableGate)
        {
            for (int i = 0; i < _slots.Length; i++)
            {
                if (_slots[i].Message is not null && !_slots[i].Waiting)
                {
                    Unsettled taken = FreeLocked(i, recordDelivery: false);
                    held.Add(taken with { Deliveries = taken.Deliveries - 1 });
                }
            }
        }

        SignalIfDrained();
        return held;
    }

    /// <summary>Completes when everything this consumer was given has left it. Used by the broker's shutdown drain.</summary>
    public Task WhenDrained()
    {
        lock (_tableGate)
        {
            Debug.Assert(_publisher.Stopped, "pushes must have stopped, so that the pushed count is final");
            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        // Check after publishing _drained: a settle that happened before it is counted here, one after
        // it completes the task itself.
        SignalIfDrained();
        return _drained.Task;
    }

    /// <summary>
    /// Detaches for good: takes back every delivery, read, unread or waiting out a backoff, and completes
    /// reading. Returns them with the number of times each was delivered (unread ones do not count).
    /// Called under the subscription's lock.
    /// </summary>
    public List<Unsettled> CloseLocked(long now)
    {
        _publisher.Stopped = true;
        var held = new List<Unsettled>();
        lock (_tableGate)
        {
            // Closed first: from here on no reader takes anything out of the ring.
            _closed = true;
            TakeUnreadUnderTableLock(held, complete: true);
            for (int i = 0; i < _slots.Length; i++)
            {
                if (_slots[i].Message is not null)
                {
                    held.Add(FreeLocked(i, recordDelivery: true, now));
                }
            }

            _timerDue = 0;
            _timer?.Dispose();
        }

        SignalIfDrained();
        return held;
    }

    /// <summary>Detaches and reports the end: success when the owner asked for it, the fault otherwise.</summary>
    public void Detach(Exception? fault)
    {
        _state.Queue.Detach(this);
        Finish(fault);
    }

    /// <summary>
    /// Reports the end of a consumer the broker already closed (taken over, cut loose): its client forgets it,
    /// and <see cref="Completion"/> completes. Called without any lock: completion runs continuations.
    /// </summary>
    public void Finish(Exception? fault)
    {
        _client.Forget(this);
        if (fault is null)
        {
            _completion.TrySetResult();
        }
        else
        {
            _completion.TrySetException(fault);
        }
    }

    public override ValueTask DisposeAsync()
    {
        Detach(fault: null);
        return ValueTask.CompletedTask;
    }

    // ---------------------------------------------------------------- IConsumer

    void IConsumer.StopDelivering() => _state.StopDelivering(this);

    int IConsumer.TakeBackUnread() => _state.TakeBackUnread(this);

    int IConsumer.TakeBackInFlight() => _state.TakeBackInFlight(this);

    ConsumerSnapshot IConsumer.GetSnapshot() => new()
    {
        Key = _state.Key,
        Queue = Queue,
        Subscription = Name,
        Filters = Filters,
        InFlight = (int)(Volatile.Read(ref _publisher.Pushed) - Volatile.Read(ref _settled.Value)),
        MaxInFlight = _maxInFlight,
        AutoAck = _autoAck,
        IsStandby = IsStandby,
    };

    BrokerQueue IConsumer.OwnerQueue => _state.Queue;

    SubscriptionClosedException IConsumer.CreateClosedException(SubscriptionCloseReason reason, string message) =>
        new(Queue, Name, reason, message);
}
