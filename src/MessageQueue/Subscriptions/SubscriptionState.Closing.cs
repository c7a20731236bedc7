using System.Diagnostics;

namespace MessageQueue;

/// <summary>A subscription's end: cut loose past its own bound, a consumer's deliveries taken back at shutdown, and deletion with everything that still waits.</summary>
internal sealed partial class SubscriptionState<T>
{
    // ---------------------------------------------------------------- closing

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

            // To the other consumers now (the stopped one has no credit left): a competitor may be parked with room, and
            // a publish behind a non-empty backlog no longer dispatches.
            DispatchLocked();
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

            DispatchLocked();
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
}
