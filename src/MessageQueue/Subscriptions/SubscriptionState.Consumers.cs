using System.Diagnostics;

namespace MessageQueue;

/// <summary>A subscription's consumers: attaching them under the exclusive modes (reject, standby, take-over), detaching them, and the fail-over to a standby.</summary>
internal sealed partial class SubscriptionState<T>
{
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
}
