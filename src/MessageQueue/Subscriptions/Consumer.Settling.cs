using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace MessageQueue;

/// <summary>A consumer's settlements: ack, nack (with its backoff), reject and extend, through its pending table; what leaves it frees room in the queue and refills from the backlog.</summary>
internal sealed partial class Consumer<T>
{
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
            if (!_table.TryFind(token, out int index))
            {
                return new ValueTask<bool>(false);
            }

            _table.Counters.DeadLettered++;
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
            if (!_table.TryFind(token, out int index))
            {
                return new ValueTask<bool>(false);
            }

            ref PendingTable<T>.Slot extended = ref _table.At(index);
            if (_ackTimeout != 0)
            {
                // Later than before, so the timer (armed for the earliest due time) needs no change.
                extended.Due = now + _ackTimeout;
            }

            _events.NoteExtended(_state, extended.Message!, extended.Attempt);

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
        if (!NackUnderLocks(token, delay, error, out string? nackedEvent, out bool parked, out Unsettled? deadLetter))
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
    private bool NackUnderLocks(long token, TimeSpan? delay, Exception? error, out string? nackedEvent, out bool parked, out Unsettled? deadLetter)
    {
        long now = _time.GetTimestamp();
        nackedEvent = null;
        parked = false;
        deadLetter = null;
        lock (_state.Gate)
        {
            lock (_tableGate)
            {
                if (!_table.TryFind(token, out int index))
                {
                    return false;
                }

                ref PendingTable<T>.Slot slot = ref _table.At(index);
                _table.Counters.Nacked++;
                if (error is not null)
                {
                    // Counted with the nack, before the redelivery or dead letter it causes can be seen.
                    _state.RecordHandlerFailure();
                }

                slot.History = DeliveryHistory.Record(slot.History, PendingTable<T>.DeliveredAt(slot, now), error);
                TimeSpan wait = delay ?? _options.RedeliveryDelay(slot.Attempt);
                nackedEvent = slot.Message!.Event;
                _events.NoteNacked(_state, slot.Message, slot.Attempt, slot.Attempt < _maxDeliveries ? wait : null, error?.Message);

                if (slot.Attempt < _maxDeliveries && wait > TimeSpan.Zero)
                {
                    // Stale tokens from here on: the delivery is settled as far as its reader is concerned.
                    long due = now + ToTimestampUnits(wait);
                    _table.Park(index, due);
                    ArmLocked(due, now);
                    SignalIfDrained();

                    parked = true;
                    return true;
                }

                Unsettled nacked = FreeLocked(index, recordDelivery: false);
                if (nacked.Deliveries >= _maxDeliveries)
                {
                    _table.Counters.DeadLettered++;
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
    /// <remarks>
    /// The first look reads only this consumer's own line (<see cref="DeliveryRing{T}.UnreadAsSeen"/>): while the
    /// readers know of plenty to read, a settle touches nothing a publisher writes. Only a ring that looks low costs a
    /// look at the publisher's count and at the backlog, and then a refill of everything the credit allows.
    /// </remarks>
    private void AfterLeaving(Message<T> message)
    {
        _state.Queue.Release(message, _state.Name);
        if (_ring.UnreadAsSeen < _refillBelow && _state.HasWaiting && _ring.Unread < _refillBelow)
        {
            _state.OnCreditFreed();
        }
    }

    // ---------------------------------------------------------------- pending table

    /// <summary>Takes an acked delivery out of the pending table. False when the token is stale (see <see cref="PendingTable{T}.TryTakeForAck"/>).</summary>
    private bool TryTakeForAck(long token, [NotNullWhen(true)] out Message<T>? message, out int attempt)
    {
        lock (_tableGate)
        {
            if (!_table.TryTakeForAck(token, out message, out attempt))
            {
                return false;
            }

            SettledOne();
            return true;
        }
    }

    /// <summary>Empties a slot (see <see cref="PendingTable{T}.Free"/>) and counts the delivery as gone from this consumer. Under the table's lock.</summary>
    private Unsettled FreeLocked(int index, bool recordDelivery, long now = 0)
    {
        Debug.Assert(_tableGate.IsHeldByCurrentThread, "called with its lock held");
        Unsettled freed = _table.Free(index, recordDelivery, now, out bool wasParked);
        if (wasParked)
        {
            _events.NoteUnparked(_state);
        }

        SettledOne();
        return freed;
    }

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
            && Volatile.Read(ref _settled.Value) + _table.Parked == _ring.Pushed)
        {
            drained.TrySetResult();
        }
    }
}
