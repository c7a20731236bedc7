using System.Collections.Frozen;
using System.Diagnostics;
using MessageQueue.Persistence;

namespace MessageQueue;

/// <summary>
/// Durable queues: every message is stored before any subscription sees it, and settlements follow it into
/// the store, so that a restart brings back exactly what was published and not yet settled.
/// </summary>
/// <remarks>
/// <para><b>Store first, deliver after the commit.</b> A durable publish takes its sequence and posts the
/// message to the store's writer under <see cref="_storeGate"/>, so the writer receives the queue's messages
/// in sequence order. The writer commits them with whatever else queued up (group commit) and then, on its
/// own thread, hands each to the subscriptions (<see cref="IStoreCommitTarget.OnCommitted"/>), still in sequence order. The
/// publish completes after that commit. A message whose commit failed is never delivered: no consumer
/// ever sees a message its publisher was told was not stored.</para>
/// <para><b>Settlements</b> are posted without waiting (group commit makes them cheap): a settlement not yet
/// committed when the process dies is redelivered after the restart, which at-least-once allows.</para>
/// </remarks>
internal sealed partial class BrokerQueue<T> : IStoreCommitTarget
{
    // Set when the queue is durable. Taking a sequence and posting it happen together under _storeGate.
    private readonly Lock _storeGate = new();
    private StoreWriter? _writer;
    private bool _flush;
    private IPayloadSerializer<T>? _serializer;
    private long _deduplicationWindow; // ticks; for the store's copy of deduplication ids

    // Limits retention: messages posted to the store but not yet in the log (under _gate), so the bound counts them.
    private int _staged;
    private long _storeFailures;

    /// <summary>Gets whether the queue keeps its messages in the store.</summary>
    public bool IsDurable => _writer is not null;

    /// <summary>Makes the queue durable. Called once, before the queue is visible to anyone.</summary>
    public void UseStore(StoreWriter writer, Durability durability, IPayloadSerializer<T> serializer)
    {
        Debug.Assert(durability != Durability.InMemory);
        _writer = writer;
        _flush = durability == Durability.Fsync;
        _serializer = serializer;
        _deduplicationWindow = Options.DeduplicationWindow.Ticks;
    }

    /// <summary>A message on its way into the store, with the one subscription it goes to (a replayed dead letter).</summary>
    private sealed record Targeted(Message<T> Message, SubscriptionState<T> Target);

    /// <summary>A message on its way into a Limits log, with the one subscription it goes to (a replayed dead letter), if any.</summary>
    private sealed record LogEntry(Message<T> Message, SubscriptionState<T>? Target);

    /// <summary>A message on its way into the schedule (delayed delivery).</summary>
    private sealed record Held(Draft Draft);

    private async ValueTask<PublishReceipt> AfterCommitAsync(PublishReceipt receipt, long ticket)
    {
        await _writer!.WaitForCommitAsync(ticket).ConfigureAwait(false);
        return receipt;
    }

    // ---------------------------------------------------------------- staging

    /// <summary>Interest retention: the admitted draft (it holds a unit of depth) goes to the store; subscriptions get it after the commit.</summary>
    private PublishReceipt Stage(in Draft draft, out long ticket)
    {
        try
        {
            Message<T> message = Post(draft, toLog: false, out ticket);
            return new PublishReceipt(Name, message.Id, message.Sequence);
        }
        catch
        {
            FreeDepth();
            throw;
        }
    }

    /// <summary>Limits retention: the draft goes to the store and into the log after the commit. The bound counts staged messages.</summary>
    private bool StageToLog(in Draft draft, out PublishReceipt receipt, bool force, out long ticket)
    {
        lock (_gate)
        {
            if (_log!.Count + _staged >= _maxMessages && !force)
            {
                receipt = default;
                ticket = 0;
                return false;
            }

            _staged++;
        }

        try
        {
            Message<T> message = Post(draft, toLog: true, out ticket);
            receipt = new PublishReceipt(Name, message.Id, message.Sequence);
            return true;
        }
        catch
        {
            lock (_gate)
            {
                _staged--;
            }

            throw;
        }
    }

    /// <summary>Delayed delivery: the held draft is stored, and scheduled in memory after the commit.</summary>
    private PublishReceipt StageScheduled(in Draft draft, out long ticket)
    {
        try
        {
            byte[] payload = SerializeForStore(draft.Payload);
            long timestamp = _time.GetUtcNow().UtcTicks;
            var stored = new StoredMessage(
                Name,
                0,
                draft.Id,
                draft.Event,
                payload,
                draft.Headers,
                new DateTimeOffset(timestamp, TimeSpan.Zero),
                draft.ExpiresAt == 0 ? null : new DateTimeOffset(draft.ExpiresAt, TimeSpan.Zero),
                new DateTimeOffset(draft.DueAt, TimeSpan.Zero),
                DeduplicateUntil(draft, timestamp));
            ticket = _writer!.Post(StoreOperation.Schedule(stored), _flush, this, new Held(draft));
            return new PublishReceipt(Name, draft.Id, 0);
        }
        catch
        {
            if (_log is null)
            {
                FreeDepth();
            }

            throw;
        }
    }

    /// <summary>Serializes a payload for the store, refusing one past <see cref="BrokerOptions.MaxPersistedPayloadSize"/>.</summary>
    private byte[] SerializeForStore(T payload)
    {
        byte[] bytes = _serializer!.Serialize(payload);
        int max = _broker.Limits.MaxPersistedPayloadSize;
        if (bytes.Length > max)
        {
            throw new ArgumentException(
                $"The payload serialized to {bytes.Length} bytes; durable queue '{Name}' stores at most {max} (BrokerOptions.MaxPersistedPayloadSize). Send a smaller payload (a reference to the data, say), or raise the limit. Nothing was published.",
                nameof(payload));
        }

        return bytes;
    }

    /// <summary>Serializes the payload, then takes the next sequence and posts the message, together, so the store gets the queue's messages in order.</summary>
    private Message<T> Post(in Draft draft, bool toLog, out long ticket)
    {
        // Outside any lock: the serializer may run user code (converters).
        byte[] payload = SerializeForStore(draft.Payload);
        long timestamp = _time.GetUtcNow().UtcTicks;
        bool releasedHeld = draft.DueAt != 0;
        lock (_storeGate)
        {
            Message<T> message = CreateMessage(draft, timestamp);
            var stored = new StoredMessage(
                Name,
                message.Sequence,
                message.Id,
                message.Event,
                payload,
                message.Headers,
                message.Timestamp,
                message.ExpiresAt,
                DueAt: releasedHeld ? new DateTimeOffset(draft.DueAt, TimeSpan.Zero) : null, // a held message enters the queue: the store forgets the held copy in the same operation
                DeduplicateUntil: releasedHeld ? null : DeduplicateUntil(draft, timestamp));
            // What OnCommitted does with it: into the log, to one replay target, or routed (the message itself, no wrapper).
            object state = toLog ? new LogEntry(message, draft.Target) : draft.Target is { } target ? new Targeted(message, target) : message;
            ticket = _writer!.Post(StoreOperation.Append(stored), _flush, this, state);
            return message;
        }
    }

    /// <summary>Until when the store remembers a published id for deduplication; null when the queue does not deduplicate.</summary>
    private DateTimeOffset? DeduplicateUntil(in Draft draft, long timestamp) =>
        _deduplication is not null && draft.Id != Guid.Empty ? new DateTimeOffset(timestamp + _deduplicationWindow, TimeSpan.Zero) : null;

    // ---------------------------------------------------------------- after the commit

    /// <inheritdoc/>
    void IStoreCommitTarget.OnCommitted(object? state)
    {
        switch (state)
        {
            case Message<T> message:
                HandOverCommitted(message, null);
                break;
            case Targeted targeted:
                HandOverCommitted(targeted.Message, targeted.Target);
                break;
            case LogEntry entry:
                lock (_gate)
                {
                    _staged--;
                }

                AppendToLog(new Draft { Target = entry.Target }, 0, entry.Message);
                break;
            case Held held when _closed:
                // Closed between the post and the commit: it stays stored for the next start.
                if (_log is null)
                {
                    FreeDepth();
                }

                Interlocked.Increment(ref _abandoned);
                break;
            case Held held:
                Hold(held.Draft);
                break;
        }
    }

    /// <inheritdoc/>
    void IStoreCommitTarget.OnFailed(object? state)
    {
        Interlocked.Increment(ref _storeFailures);
        switch (state)
        {
            case Message<T> or Targeted:
                FreeDepth();
                break;
            case LogEntry:
                lock (_gate)
                {
                    _staged--;
                }

                break;
            case Held when _log is null:
                FreeDepth();
                break;
        }
    }

    /// <summary>
    /// Hands a committed message to the subscriptions it routes to now, except those created after its
    /// sequence was taken (a restart would not give it to them either). On the writer thread, in sequence order.
    /// </summary>
    private void HandOverCommitted(Message<T> message, SubscriptionState<T>? target)
    {
        SubscriptionState<T>[] subscriptions = target is { IsDeleted: false } ? [target] : GetRoute(message.Event).Subscriptions;
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

        RecordSent(message);
        if (receivers == 0)
        {
            // Nobody wants it any more: not kept, like an unrouted publish.
            NotePublished(message, 0);
            CountUnrouted(message.Event);
            FreeDepth();
            _writer!.TryPost(StoreOperation.Remove(Name, message.Sequence), _flush);
        }

        foreach (SubscriptionState<T> subscription in subscriptions)
        {
            if (subscription.HasPendingWork)
            {
                FinishPendingWork(subscription);
            }
        }
    }

    // ---------------------------------------------------------------- settlements

    /// <summary>A subscription let go of a message: the store forgets it once nobody holds it, or records the durable subscription's ack.</summary>
    private void StoreReleased(Message<T> message, string? subscription, bool last)
    {
        if (last && _log is null)
        {
            _writer!.TryPost(StoreOperation.Remove(Name, message.Sequence), _flush);
        }
        else if (subscription is not null)
        {
            _writer!.TryPost(StoreOperation.Ack(Name, subscription, message.Sequence), _flush);
        }
    }

    /// <summary>A message came back to a durable subscription after <paramref name="deliveries"/> deliveries.</summary>
    internal void StoreDeliveries(string subscription, long sequence, int deliveries) =>
        _writer?.TryPost(StoreOperation.SetDeliveries(Name, subscription, sequence, deliveries), _flush);

    /// <summary>On the writer thread, before each batch: the cursors that moved since the last one.</summary>
    internal override void PostCursors()
    {
        if (_writer is null)
        {
            return;
        }

        foreach (SubscriptionState<T> subscription in Volatile.Read(ref _subscriptions))
        {
            if (subscription.Name is { } name && subscription.TryTakeCursor(out long cursor))
            {
                _writer.TryPost(StoreOperation.SetCursor(Name, name, cursor), _flush);
            }
        }
    }

    /// <summary>A new durable subscription is stored; the caller waits for the ticket before it returns.</summary>
    private long StoreSubscription(SubscriptionState<T> subscription) =>
        _writer is null || subscription.Name is null
            ? 0
            : _writer.Post(StoreOperation.SaveSubscription(new StoredSubscription(Name, subscription.Name, subscription.FilterTexts, subscription.StartAfter)), _flush);

    // ---------------------------------------------------------------- recovery

    /// <summary>
    /// Rebuilds the queue from what the store read back: its sequence, durable subscriptions, their messages
    /// (each with the deliveries it had), held messages and deduplication ids. Called once, before the queue
    /// is visible to anyone. Payloads are read only as <typeparamref name="T"/>.
    /// </summary>
    /// <exception cref="MessageStoreException">A stored payload cannot be read as <typeparamref name="T"/>.</exception>
    public void Recover(StoredQueueState stored)
    {
        Debug.Assert(_writer is not null);

        // Sequences never go back: publishes that routed nowhere took sequences the store never saw, and a
        // subscription created after them starts after them.
        _sequence.Value = Math.Max(_sequence.Value, stored.LastSequence);
        foreach (StoredSubscriptionState durable in stored.Subscriptions)
        {
            _sequence.Value = Math.Max(_sequence.Value, durable.Subscription.StartAfter);
        }

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
                AddSubscriptionLocked(state);
                subscriptions.Add((state, durable));
            }
        }

        foreach (StoredMessage storedMessage in stored.Messages)
        {
            Message<T> message = Restore(storedMessage, storedMessage.Sequence);
            var holders = new List<(SubscriptionState<T> State, int Deliveries)>();
            foreach ((SubscriptionState<T> state, StoredSubscriptionState durable) in subscriptions)
            {
                if (state.StartAfter < message.Sequence && state.Matches(message.Event) && !durable.Acked.Contains(message.Sequence))
                {
                    int deliveries = durable.Deliveries.TryGetValue(message.Sequence, out int counted) ? counted : message.Sequence <= durable.Cursor ? 1 : 0;
                    holders.Add((state, deliveries));
                }
            }

            if (_log is not null)
            {
                lock (_gate)
                {
                    _log.Enqueue(message);
                }
            }
            else if (holders.Count == 0)
            {
                // Settled everywhere, or its subscription is gone: the store keeps it no longer.
                _writer!.TryPost(StoreOperation.Remove(Name, message.Sequence), _flush);
                continue;
            }
            else
            {
                _depth.ForceAdmit();
            }

            if (holders.Count > 0)
            {
                _observer?.Referenced(holders.Count);
                message.InitializeReferences(holders.Count);
            }

            foreach ((SubscriptionState<T> state, int deliveries) in holders)
            {
                lock (state.Gate)
                {
                    if (deliveries > 0)
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
            var draft = new Draft(held.Event, Read(held), Frozen(held.Headers), held.Id, held.ExpiresAt?.UtcTicks ?? 0, held.DueAt?.UtcTicks ?? 0);
            if (_log is null)
            {
                _depth.ForceAdmit();
            }

            Hold(draft);
        }

        if (_deduplication is not null)
        {
            DateTimeOffset now = _time.GetUtcNow();
            IEnumerable<StoredId> held = stored.Scheduled
                .Where(m => m.DeduplicateUntil is not null)
                .Select(m => new StoredId(m.Id, 0, m.DeduplicateUntil!.Value));
            foreach (StoredId id in stored.DeduplicationIds.Concat(held).OrderBy(i => i.Until))
            {
                _deduplication.Restore(id.MessageId, new PublishReceipt(Name, id.MessageId, id.Sequence), id.Until - now);
            }

            _writer!.TryPost(StoreOperation.ForgetIds(Name, now), _flush);
        }

        if (_log is not null && _maxAge != 0)
        {
            lock (_gate)
            {
                ArmAgeLocked(_time.GetUtcNow().UtcTicks);
            }
        }
    }

    private Message<T> Restore(StoredMessage stored, long sequence) => new(
        stored.Id,
        Name,
        stored.Event,
        Read(stored),
        sequence,
        stored.Timestamp.UtcTicks,
        Frozen(stored.Headers),
        stored.ExpiresAt?.UtcTicks ?? 0);

    private T Read(StoredMessage stored)
    {
        try
        {
            return _serializer!.Deserialize(stored.Payload.Span);
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            throw new MessageStoreException(
                $"Stored message {stored.Sequence} ('{stored.Event}', id {stored.Id}) of queue '{Name}' cannot be read as {typeof(T).Name}: {exception.Message} " +
                "Declare the queue with the payload type (and serializer) it was stored with.",
                exception);
        }
    }

    private static FrozenDictionary<string, string> Frozen(IReadOnlyDictionary<string, string> headers) =>
        headers.Count == 0 ? FrozenDictionary<string, string>.Empty : headers.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Gets how many durable publishes the store failed to commit.</summary>
    internal long StoreFailures => Interlocked.Read(ref _storeFailures);
}
