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
    /// <returns>Whether any subscription took it (so it is in memory until they let go of it).</returns>
    internal bool HandOverCommitted(Message<T> message, SubscriptionState<T>? target)
    {
        SubscriptionState<T>[] subscriptions = EnterRoute(message, target);
        int receivers;
        try
        {
            receivers = HandOverLocked(subscriptions, message, committed: true);
        }
        finally
        {
            ExitAll(subscriptions);
        }

        AfterHandOver(subscriptions, message, receivers);
        return receivers > 0;
    }

    /// <summary>
    /// Locks and returns the subscriptions a committed message goes to: its one target (a replayed dead letter) if that
    /// subscription is still there, checked under its lock; otherwise those its event routes to now.
    /// </summary>
    private SubscriptionState<T>[] EnterRoute(Message<T> message, SubscriptionState<T>? target)
    {
        if (target is { IsDeleted: false })
        {
            SubscriptionState<T>[] only = [target];
            EnterAll(only);
            if (!target.IsDeleted)
            {
                return only;
            }

            // Deleted meanwhile: the message goes where its event routes, as if it had had no target.
            ExitAll(only);
        }

        SubscriptionState<T>[] route = _routes.Get(message.Event).Subscriptions;
        EnterAll(route);
        return route;
    }

    /// <summary>
    /// A committed message stays in the store, not in memory, because the queue's memory window is full
    /// (<see cref="MessagePager{T}"/>). It counts as sent now; the subscriptions get it when it is read back.
    /// </summary>
    internal void Spilled(Message<T> message)
    {
        // The observer counts it as held once until it is read back and its holders are known.
        _events.NoteEntering(this, message, 1);
        _events.Sent(Name, IsDeadLetterQueue, message.Event);
    }

    /// <summary>
    /// Rebuilds the queue from what the store read back: its sequence, durable subscriptions, their messages
    /// (each with the deliveries it had), held messages and deduplication ids. Called once, before the queue
    /// is visible to anyone. Payloads are read only as <typeparamref name="T"/>. With a memory window
    /// (<see cref="MessagePager{T}"/>), only the window's messages are read now, the rest as consumers release them.
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
            }
        }

        if (storage.Pager is { } pager)
        {
            // Every stored message takes its room now, read back or not; the first window is read on the writer thread,
            // where every later read runs too.
            for (long i = 0; i < stored.MessageCount; i++)
            {
                _retention.ForceRoom();
            }

            storage.Writer.Read(store =>
            {
                pager.Start(store, stored.MessageCount);
                return true;
            });
        }
        else
        {
            // Everything in memory: a store that does not read pages gave the messages with the rest; a paged store
            // gives a limits log whole.
            RecoverAll(stored.Messages.Count > 0 || !storage.Writer.ReadsPages
                ? stored
                : storage.Writer.Read(store => store.ReadMessages(Name, 0, int.MaxValue)));
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

    /// <summary>Recovery without a memory window: every stored message goes back into memory, each to the subscriptions that still hold it.</summary>
    private void RecoverAll(StoredQueueState stored)
    {
        var storage = (DurableQueueStorage<T>)_storage;
        Dictionary<string, StoredSubscriptionState> durables = ByName(stored);
        var holders = new List<(SubscriptionState<T> State, int Deliveries, bool CameBack)>();
        foreach (StoredMessage storedMessage in stored.Messages)
        {
            Message<T> message = storage.Restore(storedMessage);
            holders.Clear();
            foreach (SubscriptionState<T> state in _routes.Get(message.Event).Subscriptions)
            {
                if (Holds(state, message, durables, out int deliveries, out bool cameBack))
                {
                    holders.Add((state, deliveries, cameBack));
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
                    state.EnqueueStoredLocked(message, deliveries, cameBack);
                }
            }
        }
    }

    /// <summary>
    /// A page of stored messages read back into memory (<see cref="MessagePager{T}"/>), on the writer thread: each goes
    /// to the subscriptions that hold it, after everything already in memory. Each already holds its room in the queue.
    /// </summary>
    /// <param name="page">The messages, with the acks and delivery counts the durable subscriptions have for them.</param>
    /// <param name="notedFrom">The observer already counted the messages from this sequence on (spilled by this broker) as held once.</param>
    /// <param name="targets">The one subscription each replayed dead letter goes to, by sequence; each is taken out as it is met.</param>
    /// <param name="pager">Counts the messages that go into memory.</param>
    /// <exception cref="MessageStoreException">A stored payload cannot be read as <typeparamref name="T"/>.</exception>
    internal void AdmitStored(StoredQueueState page, long notedFrom, Dictionary<long, SubscriptionState<T>>? targets, MessagePager<T> pager)
    {
        var storage = (DurableQueueStorage<T>)_storage;
        Dictionary<string, StoredSubscriptionState> durables = ByName(page);
        foreach (StoredMessage storedMessage in page.Messages)
        {
            Message<T> message = storage.Restore(storedMessage);
            SubscriptionState<T>? target = null;
            targets?.Remove(message.Sequence, out target);
            SubscriptionState<T>[] route = EnterRoute(message, target);
            int holders = 0;
            try
            {
                foreach (SubscriptionState<T> state in route)
                {
                    holders += Holds(state, message, durables, out _, out _) ? 1 : 0;
                }

                if (holders > 0)
                {
                    // Counted before any consumer can see it.
                    _events.NoteReferenced(message.Sequence >= notedFrom ? holders - 1 : holders);
                    message.InitializeReferences(holders);
                    pager.Entered();
                    foreach (SubscriptionState<T> state in route)
                    {
                        if (Holds(state, message, durables, out int deliveries, out bool cameBack))
                        {
                            state.EnqueueStoredLocked(message, deliveries, cameBack);
                        }
                    }
                }
            }
            finally
            {
                ExitAll(route);
            }

            if (holders == 0)
            {
                // Settled everywhere, or its subscriptions are gone: it leaves the queue.
                if (message.Sequence >= notedFrom)
                {
                    _events.NoteReferenced(-1);
                }

                _retention.ReturnRoom();
                storage.Removed(message.Sequence);
                continue;
            }

            foreach (SubscriptionState<T> state in route)
            {
                if (state.HasPendingWork)
                {
                    FinishPendingWork(state);
                }
            }
        }
    }

    private static Dictionary<string, StoredSubscriptionState> ByName(StoredQueueState stored) =>
        stored.Subscriptions.ToDictionary(s => s.Subscription.Name, StringComparer.Ordinal);

    /// <summary>
    /// Whether a subscription holds a stored message: it takes the message (<see cref="Takes"/>) and has not acked it. A
    /// durable one that read it before (the stored cursor passed it) or gave it back with a count has it come back with
    /// those deliveries; otherwise it is fresh.
    /// </summary>
    private static bool Holds(SubscriptionState<T> state, Message<T> message, Dictionary<string, StoredSubscriptionState> durables, out int deliveries, out bool cameBack)
    {
        deliveries = 0;
        cameBack = false;
        if (!Takes(state, message, committed: true))
        {
            return false;
        }

        if (state.Name is null || !durables.TryGetValue(state.Name, out StoredSubscriptionState? durable))
        {
            // Ephemeral, or created after the read (then it starts after every stored message, and Takes refused).
            return true;
        }

        if (durable.Acked.Contains(message.Sequence))
        {
            return false;
        }

        bool counted = durable.Deliveries.TryGetValue(message.Sequence, out deliveries);
        bool read = message.Sequence <= durable.Cursor;
        if (!counted)
        {
            deliveries = read ? 1 : 0;
        }

        // Read before, or given back with a count (0 for one cut short by a stop): it came back, and goes out with the
        // others that did, in sequence order, ahead of what was never read.
        cameBack = counted || read;
        return true;
    }
}
