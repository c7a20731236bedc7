using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace MessageQueue;

/// <summary>
/// One attached reader of a subscription: a ring of deliveries handed to it plus the table of
/// deliveries it has read and not settled (the pending-ack table). This is the <see cref="Subscription{T}"/>
/// users read from.
/// </summary>
/// <remarks>
/// <para><b>Three small parts.</b> The <see cref="DeliveryRing{T}"/> carries deliveries from the subscription (pushed
/// under the subscription's lock) to the readers (under <see cref="_tableGate"/>), bounded by MaxInFlight. A delivery
/// enters the <see cref="PendingTable{T}"/> when it is read, not when it is pushed: one that sits unread in the ring is
/// still in flight and still counts against MaxInFlight. <see cref="_settled"/>, on a cache line of its own, counts
/// the deliveries that left this consumer for any reason; its increment is the full fence of the credit protocol. In
/// steady state neither side writes what the other reads, so a publisher and a consumer on two cores do not fight
/// over cache lines. Readers with nothing to read park in <see cref="ReadWaiters"/>.</para>
/// <para><b>Time.</b> A slot can carry a due time: the ack deadline of a read delivery, or the end of a
/// nacked delivery's backoff (the message keeps its slot, and so its place, while it waits). One timer
/// per consumer, created on first need, fires at the earliest due time; it is armed under the table's lock.</para>
/// </remarks>
internal sealed partial class Consumer<T> : Subscription<T>, IConsumer, IReadySource
{
    private const int InitialSlots = 16;
    private const long NoToken = -1;
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
    private readonly int _refillBelow; // an ack refills from the backlog only when fewer unread deliveries than this are left
    private readonly int _maxDeliveries;
    private readonly bool _autoAck;
    private readonly bool _tracksCursor; // a durable subscription of a durable queue: first reads move its stored cursor
    private readonly long _ackTimeout; // in TimeProvider timestamp units; 0 for none
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // The hand-off from the subscription: pushed under the subscription's lock, read under _tableGate.
    private readonly DeliveryRing<T> _ring;
    private volatile bool _completed; // no more deliveries: readers finish once the ring is empty

    // Consumer side. _settled counts deliveries that left this consumer for any reason (settled, or
    // taken back); Interlocked, so that its increment is the full fence the credit protocol needs.
    private PaddedCounter _settled;
    private readonly Lock _tableGate = new();

    // Where reads and settlements are reported (metrics, the test harness's observer).
    private readonly BrokerEvents _events;

    // The deliveries read and not settled, under _tableGate.
    private readonly PendingTable<T> _table;
    private bool _closed;
    private long _autoAcked; // auto-acked reads, counted without the lock
    private TaskCompletionSource? _drained;
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
        _ring = new DeliveryRing<T>(_tableGate, _maxInFlight);
        _maxDeliveries = options.MaxDeliveries;
        _autoAck = options.AutoAck;
        _tracksCursor = state.Queue.IsDurable && state.Name is not null;
        _ackTimeout = options.AckTimeout == Timeout.InfiniteTimeSpan ? 0 : ToTimestampUnits(options.AckTimeout);
        _table = new PendingTable<T>(_tableGate, _maxInFlight, Math.Min(_maxInFlight, InitialSlots));
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
                ConsumerCounters counters = _table.Counters;
                counters.Acked += Interlocked.Read(ref _autoAcked);
                return counters;
            }
        }
    }

    /// <summary>Deliveries pushed and not yet settled. Called under the subscription's lock.</summary>
    public int InFlightLocked
    {
        get
        {
            Debug.Assert(_state.Gate.IsHeldByCurrentThread, "called with its lock held");
            return (int)(_ring.Pushed - Volatile.Read(ref _settled.Value));
        }
    }

    // ---------------------------------------------------------------- publisher side

    /// <summary>True while this consumer may be given another delivery. Called under the subscription's lock.</summary>
    public bool HasCreditLocked()
    {
        Debug.Assert(_state.Gate.IsHeldByCurrentThread, "called with its lock held");
        return _ring.HasCredit(ref _settled.Value);
    }

    /// <summary>Gives this consumer a delivery. Called under the subscription's lock, only after <see cref="HasCreditLocked"/>.</summary>
    public void PushLocked(Message<T> message, int attempt, DeliveryHistory? history)
    {
        Debug.Assert(_state.Gate.IsHeldByCurrentThread, "called with its lock held");
        _ring.Push(new DeliveryRing<T>.Item(message, attempt, history), ref _settled.Value);

        // The fence orders the push above before the read of the flag; a parking reader does the opposite.
        Interlocked.MemoryBarrier();
        if (_waiters.IsArmed)
        {
            _waiters.Wake(canRead: true);
        }
    }

    /// <summary>Something to read, or the end: what a parked reader waits for.</summary>
    bool IReadySource.IsReady(out bool canRead)
    {
        if (_ring.HasUnread && !_closed)
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
        while (TryTakeNext(out DeliveryRing<T>.Item pushed, out long token) || (_state.OnCreditFreed() && TryTakeNext(out pushed, out token)))
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
    private bool TryTakeNext(out DeliveryRing<T>.Item pushed, out long token)
    {
        // The clock is read only for an ack deadline, and before the lock. (Without a deadline, a failed
        // delivery's history records when it failed instead of when it was read: that keeps a clock read,
        // about 30 ns here, off every delivery.)
        long now = _ackTimeout == 0 ? 0 : _time.GetTimestamp();
        token = NoToken;
        lock (_tableGate)
        {
            if (_closed || !_ring.TryTake(out pushed))
            {
                pushed = default;
                return false;
            }

            if (!_autoAck)
            {
                if (_tracksCursor && pushed.Attempt == 1)
                {
                    _state.NoteFirstDelivery(pushed.Message.Sequence);
                }

                long due = _ackTimeout == 0 ? 0 : now + _ackTimeout;
                token = _table.Add(pushed.Message, pushed.Attempt, now, due, pushed.History);
                if (due != 0)
                {
                    ArmLocked(due, now);
                }
            }

            return true;
        }
    }

    /// <summary>An expired message was read: it leaves the consumer without being delivered, to the dead-letter queue.</summary>
    private void Expire(DeliveryRing<T>.Item pushed, long token)
    {
        lock (_tableGate)
        {
            _table.Counters.Expired++;
            if (_autoAck)
            {
                SettledOne();
            }
            else if (_table.TryFind(token, out int index))
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
}
