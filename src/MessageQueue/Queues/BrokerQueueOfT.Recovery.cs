using MessageQueue.Persistence;

namespace MessageQueue;

/// <summary>
/// A durable queue's side of its store (<see cref="DurableQueueStorage{T}"/>): messages handed to the subscriptions after
/// their commit, and the queue rebuilt from what the store read back at start.
/// </summary>
internal sealed partial class BrokerQueue<T>
{
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<PublishReceipt> AfterCommitAsync(PublishReceipt receipt, long ticket)
    {
        await _storage.WaitForCommitAsync(ticket).ConfigureAwait(false);
        return receipt;
    }

    /// <summary>
    /// Hands a committed message to the subscriptions it routes to now, except those created after its
    /// sequence was taken (a restart would not give it to them either). On the writer thread, in sequence order.
    /// </summary>
    internal void HandOverCommitted(Message<T> message, SubscriptionState<T>? target)
    {
        SubscriptionState<T>[] subscriptions = target is { IsDeleted: false } ? [target] : _routes.Get(message.Event).Subscriptions;
        int receivers;
        EnterAll(subscriptions);
        try
        {
            receivers = HandOverLocked(subscriptions, message, committed: true);
        }
        finally
        {
            ExitAll(subscriptions);
        }

        AfterHandOver(subscriptions, message, receivers);
    }

    /// <summary>
    /// Rebuilds the queue from what the store read back: its sequence, durable subscriptions, their messages
    /// (each with the deliveries it had), held messages and deduplication ids. Called once, before the queue
    /// is visible to anyone. Payloads are read only as <typeparamref name="T"/>.
    /// </summary>
    /// <exception cref="MessageStoreException">A stored payload cannot be read as <typeparamref name="T"/>.</exception>
    public void Recover(StoredQueueState stored)
    {
        var storage = (DurableQueueStorage<T>)_storage;

        // Sequences never go back: publishes that routed nowhere took sequences the store never saw, and a
        // subscription created after them starts after them.
        _sequence.Value = Math.Max(_sequence.Value, stored.LastSequence);
        foreach (StoredSubscriptionState durable in stored.Subscriptions)
        {
            _sequence.Value = Math.Max(_sequence.Value, durable.Subscription.StartAfter);
        }

        // What the store knew was published by an earlier broker: Published counts from here.
        _sequenceAtStart = _sequence.Value;

        var subscriptions = new List<(SubscriptionState<T> State, StoredSubscriptionState Stored)>();
        lock (_gate)
        {
            foreach (StoredSubscriptionState durable in stored.Subscriptions)
            {
                var state = new SubscriptionState<T>(this, ++_lastSubscriptionId, durable.Subscription.Name, [.. durable.Subscription.Filters])
                {
                    StartAfter = durable.Subscription.StartAfter,
                };
                state.RestoreCursor(durable.Cursor);
                _durable.Add(state.Name!, state);
                _routes.AddLocked(state);
                subscriptions.Add((state, durable));
            }
        }

        foreach (StoredMessage storedMessage in stored.Messages)
        {
            Message<T> message = storage.Restore(storedMessage);
            var holders = new List<(SubscriptionState<T> State, int Deliveries, bool CameBack)>();
            foreach ((SubscriptionState<T> state, StoredSubscriptionState durable) in subscriptions)
            {
                if (state.StartAfter < message.Sequence && state.Matches(message.Event) && !durable.Acked.Contains(message.Sequence))
                {
                    bool counted = durable.Deliveries.TryGetValue(message.Sequence, out int deliveries);
                    bool read = message.Sequence <= durable.Cursor;
                    if (!counted)
                    {
                        deliveries = read ? 1 : 0;
                    }

                    // Read before, or given back with a count (0 for one cut short by a stop): it came back, and goes
                    // out with the others that did, in sequence order, ahead of what was never read.
                    holders.Add((state, deliveries, counted || read));
                }
            }

            if (!_retention.Recover(message, holders.Count))
            {
                // Settled everywhere, or its subscription is gone: the store keeps it no longer.
                storage.Removed(message.Sequence);
                continue;
            }

            if (holders.Count > 0)
            {
                _events.NoteReferenced(holders.Count);
                message.InitializeReferences(holders.Count);
            }

            foreach ((SubscriptionState<T> state, int deliveries, bool cameBack) in holders)
            {
                lock (state.Gate)
                {
                    if (cameBack)
                    {
                        state.RestoreReturnedLocked(message, deliveries);
                    }
                    else
                    {
                        state.EnqueueLocked(message);
                    }
                }
            }
        }

        foreach (StoredMessage held in stored.Scheduled)
        {
            Draft<T> draft = storage.RestoreHeld(held);
            _retention.ForceRoom();
            Hold(draft);
        }

        if (_deduplication is not null)
        {
            DateTimeOffset now = _time.GetUtcNow();
            IEnumerable<StoredId> held = stored.Scheduled
                .Where(m => m.DeduplicateUntil is not null)
                .Select(m => new StoredId { MessageId = m.Id, Sequence = 0, Until = m.DeduplicateUntil!.Value });
            foreach (StoredId id in stored.DeduplicationIds.Concat(held).OrderBy(i => i.Until))
            {
                _deduplication.Restore(id.MessageId, new PublishReceipt(Name, id.MessageId, id.Sequence), id.Until - now);
            }

            storage.ForgetIds(now);
        }

        _retention.Recovered();
    }
}
