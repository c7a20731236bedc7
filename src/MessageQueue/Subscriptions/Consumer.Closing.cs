using System.Diagnostics;

namespace MessageQueue;

/// <summary>A consumer's end: stopping deliveries, taking back what it held, draining at shutdown, and detaching.</summary>
internal sealed partial class Consumer<T>
{
    // ---------------------------------------------------------------- closing

    /// <summary>No new deliveries. Called under the subscription's lock.</summary>
    public void StopLocked()
    {
        Debug.Assert(_state.Gate.IsHeldByCurrentThread, "called with its lock held");
        _ring.Stopped = true;
    }

    /// <summary>
    /// Takes back the deliveries still sitting unread in the ring; they do not count as attempts.
    /// With <paramref name="complete"/>, also ends reading, so readers finish once they are
    /// done with what they hold. Called under the subscription's lock, after <see cref="StopLocked"/>.
    /// </summary>
    public List<Unsettled> TakeUnreadLocked(bool complete)
    {
        Debug.Assert(_state.Gate.IsHeldByCurrentThread, "called with its lock held");
        Debug.Assert(_ring.Stopped);
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
        while (_ring.TryTake(out DeliveryRing<T>.Item pushed))
        {
            unread.Add(new Unsettled(pushed.Message, pushed.Attempt - 1, pushed.History));
            _state.UncountUnreadLocked(pushed.Attempt);
        }

        Interlocked.Add(ref _settled.Value, unread.Count - before);
        _ring.AssertInvariants(Volatile.Read(ref _settled.Value));
        _table.AssertInvariants();
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
        Debug.Assert(_state.Gate.IsHeldByCurrentThread, "called with its lock held");
        Debug.Assert(_ring.Stopped);
        var held = new List<Unsettled>();
        lock (_tableGate)
        {
            for (int i = 0; i < _table.Capacity; i++)
            {
                if (_table.At(i).Message is not null && !_table.At(i).Waiting)
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
            Debug.Assert(_ring.Stopped, "pushes must have stopped, so that the pushed count is final");
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
        Debug.Assert(_state.Gate.IsHeldByCurrentThread, "called with its lock held");
        _ring.Stopped = true;
        var held = new List<Unsettled>();
        lock (_tableGate)
        {
            // Closed first: from here on no reader takes anything out of the ring.
            _closed = true;
            TakeUnreadUnderTableLock(held, complete: true);
            for (int i = 0; i < _table.Capacity; i++)
            {
                if (_table.At(i).Message is not null)
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
        SubscriptionId = _state.Key.Id,
        Queue = Queue,
        Subscription = Name,
        Filters = Filters,
        InFlight = (int)(_ring.Pushed - Volatile.Read(ref _settled.Value)),
        MaxInFlight = _maxInFlight,
        AutoAck = _autoAck,
        IsStandby = IsStandby,
    };

    BrokerQueue IConsumer.OwnerQueue => _state.Queue;

    SubscriptionClosedException IConsumer.CreateClosedException(SubscriptionCloseReason reason, string message) =>
        new(Queue, Name, reason, message);
}
