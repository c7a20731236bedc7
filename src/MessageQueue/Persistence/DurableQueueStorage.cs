using System.Collections.Frozen;
using System.Diagnostics;

namespace MessageQueue.Persistence;

/// <summary>
/// <see cref="Durability.Committed"/> and <see cref="Durability.Fsync"/>: every message is stored before any subscription
/// sees it, and settlements follow it into the store, so that a restart brings back exactly what was published and not
/// yet settled.
/// </summary>
/// <remarks>
/// <para><b>Store first, deliver after the commit.</b> A durable publish takes its sequence and posts the message to the
/// store's writer under <see cref="QueueStorage{T}.SequenceGate"/>, so the writer receives the queue's messages in
/// sequence order. The writer commits them with whatever else queued up (group commit) and then, on its own thread,
/// hands each back here (<see cref="IStoreCommitTarget.OnCommitted"/>), still in sequence order, and the queue hands it
/// to its subscriptions. The publish completes after that commit. A message whose commit failed is never delivered: no
/// consumer ever sees a message its publisher was told was not stored.</para>
/// <para><b>Settlements</b> are posted without waiting (group commit makes them cheap): a settlement not yet committed
/// when the process dies is redelivered after the restart, which at-least-once allows.</para>
/// </remarks>
internal sealed class DurableQueueStorage<T> : QueueStorage<T>, IStoreCommitTarget
{
    private readonly StoreWriter _writer;
    private readonly bool _flush;
    private readonly IPayloadSerializer<T> _serializer;
    private readonly int _maxPayloadSize;
    private readonly long _deduplicationWindow; // ticks; 0 when the queue does not deduplicate
    private readonly MessagePager<T>? _pager;

    /// <param name="queue">The queue.</param>
    /// <param name="writer">The store's writer.</param>
    /// <param name="durability">Committed or Fsync.</param>
    /// <param name="serializer">The queue's payload serializer.</param>
    /// <param name="maxPayloadSize">The largest serialized payload stored.</param>
    /// <param name="deduplicationWindow">How long published ids are remembered; zero when the queue does not deduplicate.</param>
    /// <param name="memoryWindow">The most messages kept in memory (<see cref="MessagePager{T}"/>); 0 for no window.</param>
    public DurableQueueStorage(BrokerQueue<T> queue, StoreWriter writer, Durability durability, IPayloadSerializer<T> serializer, int maxPayloadSize, TimeSpan deduplicationWindow, int memoryWindow)
        : base(queue)
    {
        Debug.Assert(durability != Durability.InMemory);
        _writer = writer;
        _flush = durability == Durability.Fsync;
        _serializer = serializer;
        _maxPayloadSize = maxPayloadSize;
        _deduplicationWindow = deduplicationWindow.Ticks;
        _pager = memoryWindow > 0 && writer.ReadsPages ? new MessagePager<T>(queue, writer, memoryWindow) : null;
    }

    /// <summary>What the commit of a posted message leads to: into a limits log, with the one subscription it goes to (a replayed dead letter), if any.</summary>
    private sealed record LogEntry(Message<T> Message, SubscriptionState<T>? Target);

    /// <summary>A message on its way to the one subscription it goes to (a replayed dead letter).</summary>
    private sealed record Targeted(Message<T> Message, SubscriptionState<T> Target);

    /// <summary>A message on its way into the schedule (delayed delivery).</summary>
    private sealed record Held(Draft<T> Draft);

    public override bool IsDurable => true;

    /// <summary>The store's writer: every write, and every read after the start, runs on its thread.</summary>
    public StoreWriter Writer => _writer;

    /// <summary>What keeps the queue's memory within its window; null when everything stays in memory.</summary>
    public MessagePager<T>? Pager => _pager;

    // ---------------------------------------------------------------- staging

    /// <summary>Interest retention: the admitted draft (it holds room) goes to the store; subscriptions get it after the commit.</summary>
    public override PublishReceipt Deliver(Route<T> route, in Draft<T> draft, out long ticket)
    {
        try
        {
            Message<T> message = Post(draft, toLog: false, out ticket);
            return new PublishReceipt(Queue.Name, message.Id, message.Sequence);
        }
        catch
        {
            Queue.ReturnRoom();
            throw;
        }
    }

    /// <summary>Delayed delivery: the held draft is stored, and scheduled in memory after the commit.</summary>
    public override PublishReceipt Schedule(in Draft<T> draft, out long ticket)
    {
        try
        {
            byte[] payload = Serialize(draft.Payload);
            long timestamp = Queue.TimeProvider.GetUtcNow().UtcTicks;
            var stored = new StoredMessage
            {
                Queue = Queue.Name,
                Sequence = 0,
                Id = draft.Id,
                Event = draft.Event,
                Payload = payload,
                Headers = draft.Headers,
                Timestamp = new DateTimeOffset(timestamp, TimeSpan.Zero),
                ExpiresAt = draft.ExpiresAt == 0 ? null : new DateTimeOffset(draft.ExpiresAt, TimeSpan.Zero),
                DueAt = new DateTimeOffset(draft.DueAt, TimeSpan.Zero),
                DeduplicateUntil = DeduplicateUntil(draft, timestamp),
            };
            ticket = _writer.Post(StoreOperation.Schedule(stored), _flush, this, new Held(draft));
            return new PublishReceipt(Queue.Name, draft.Id, 0);
        }
        catch
        {
            Queue.ReturnRoom();
            throw;
        }
    }

    /// <summary>Limits retention: the draft goes to the store, and into the log after the commit. The bound counts staged messages.</summary>
    public override bool TryAppendToLog(LimitsRetention<T> log, in Draft<T> draft, bool evict, out PublishReceipt receipt, out long ticket)
    {
        if (!log.TryStage(evict))
        {
            receipt = default;
            ticket = 0;
            return false;
        }

        try
        {
            Message<T> message = Post(draft, toLog: true, out ticket);
            receipt = new PublishReceipt(Queue.Name, message.Id, message.Sequence);
            return true;
        }
        catch
        {
            log.Unstage();
            throw;
        }
    }

    /// <summary>Serializes a payload for the store, refusing one past <see cref="BrokerOptions.MaxPersistedPayloadSize"/>.</summary>
    private byte[] Serialize(T payload)
    {
        byte[] bytes = _serializer.Serialize(payload);
        if (bytes.Length > _maxPayloadSize)
        {
            throw new ArgumentException(
                $"The payload serialized to {bytes.Length} bytes; durable queue '{Queue.Name}' stores at most {_maxPayloadSize} (BrokerOptions.MaxPersistedPayloadSize). Send a smaller payload (a reference to the data, say), or raise the limit. Nothing was published.",
                nameof(payload));
        }

        return bytes;
    }

    /// <summary>Serializes the payload, then takes the next sequence and posts the message, together, so the store gets the queue's messages in order.</summary>
    private Message<T> Post(in Draft<T> draft, bool toLog, out long ticket)
    {
        // Outside any lock: the serializer may run user code (converters).
        byte[] payload = Serialize(draft.Payload);
        long timestamp = Queue.TimeProvider.GetUtcNow().UtcTicks;
        bool releasedHeld = draft.DueAt != 0;
        lock (SequenceGate)
        {
            Message<T> message = Queue.CreateMessage(draft, timestamp);
            var stored = new StoredMessage
            {
                Queue = Queue.Name,
                Sequence = message.Sequence,
                Id = message.Id,
                Event = message.Event,
                Payload = payload,
                Headers = message.Headers,
                Timestamp = message.Timestamp,
                ExpiresAt = message.ExpiresAt,
                DueAt = releasedHeld ? new DateTimeOffset(draft.DueAt, TimeSpan.Zero) : null, // a held message enters the queue: the store forgets the held copy in the same operation
                DeduplicateUntil = releasedHeld ? null : DeduplicateUntil(draft, timestamp),
            };

            // What OnCommitted does with it: into the log, to one replay target, or routed (the message itself, no wrapper).
            object state = toLog ? new LogEntry(message, draft.Target) : draft.Target is { } target ? new Targeted(message, target) : message;
            ticket = _writer.Post(StoreOperation.Append(stored), _flush, this, state);
            return message;
        }
    }

    /// <summary>Until when the store remembers a published id for deduplication; null when the queue does not deduplicate.</summary>
    private DateTimeOffset? DeduplicateUntil(in Draft<T> draft, long timestamp) =>
        _deduplicationWindow != 0 && draft.Id != Guid.Empty ? new DateTimeOffset(timestamp + _deduplicationWindow, TimeSpan.Zero) : null;

    public override ValueTask WaitForCommitAsync(long ticket) => _writer.WaitForCommitAsync(ticket);

    public override long TakeUnstoredSequence(out long ticket)
    {
        // Taken and posted together, like a stored message's, so the store sees the queue's sequences in order.
        lock (SequenceGate)
        {
            long sequence = Queue.NextSequence();
            ticket = _writer.Post(StoreOperation.SequenceTaken(Queue.Name, sequence), _flush);
            return sequence;
        }
    }

    // ---------------------------------------------------------------- after the commit

    /// <inheritdoc/>
    void IStoreCommitTarget.OnCommitted(object? state)
    {
        switch (state)
        {
            case Message<T> message:
                HandOver(message, null);
                break;
            case Targeted targeted:
                HandOver(targeted.Message, targeted.Target);
                break;
            case LogEntry entry:
                Queue.Log.AppendCommitted(entry.Message, entry.Target);
                break;
            case Held held:
                Queue.HoldCommitted(held.Draft);
                break;
        }
    }

    /// <summary>A committed message goes to its subscriptions now, or, past the memory window, stays in the store until it is read back.</summary>
    private void HandOver(Message<T> message, SubscriptionState<T>? target)
    {
        if (_pager is null)
        {
            Queue.HandOverCommitted(message, target);
        }
        else if (!_pager.TakesCommitted(message.Sequence, target))
        {
            Queue.Spilled(message);
        }
        else
        {
            // Counted before any consumer can see it, so a fast ack never counts it out first.
            _pager.Entered();
            if (!Queue.HandOverCommitted(message, target))
            {
                _pager.NotEntered();
            }
        }
    }

    /// <inheritdoc/>
    void IStoreCommitTarget.OnFailed(object? state)
    {
        switch (state)
        {
            case Message<T> or Targeted or Held:
                Queue.ReturnRoom();
                break;
            case LogEntry:
                Queue.Log.Unstage();
                break;
        }
    }

    // ---------------------------------------------------------------- settlements and subscriptions

    public override void Released(Message<T> message, string? subscription, bool gone, bool last)
    {
        if (last)
        {
            _pager?.Left();
        }

        if (gone)
        {
            _writer.TryPost(StoreOperation.Remove(Queue.Name, message.Sequence), _flush);
        }
        else if (subscription is not null)
        {
            _writer.TryPost(StoreOperation.Ack(Queue.Name, subscription, message.Sequence), _flush);
        }
    }

    public override void Removed(long sequence) => _writer.TryPost(StoreOperation.Remove(Queue.Name, sequence), _flush);

    public override void Unscheduled(Guid id) => _writer.TryPost(StoreOperation.Unschedule(Queue.Name, id), _flush);

    public override bool DeliveriesCounted(string subscription, long sequence, int deliveries, IStoreCommitTarget? target = null, object? state = null) =>
        _writer.TryPost(StoreOperation.SetDeliveries(Queue.Name, subscription, sequence, deliveries), _flush, target, state);

    public override long SubscriptionCreated(SubscriptionState<T> subscription) =>
        subscription.Name is null
            ? 0
            : _writer.Post(
                StoreOperation.SaveSubscription(new StoredSubscription
                {
                    Queue = Queue.Name,
                    Name = subscription.Name,
                    Filters = subscription.FilterTexts,
                    StartAfter = subscription.StartAfter,
                }),
                _flush);

    public override void SubscriptionDeleted(string name) => _writer.TryPost(StoreOperation.DeleteSubscription(Queue.Name, name), _flush);

    public override void PostCursors(SubscriptionState<T>[] subscriptions)
    {
        foreach (SubscriptionState<T> subscription in subscriptions)
        {
            if (subscription.Name is { } name && subscription.TryTakeCursor(out long cursor))
            {
                _writer.TryPost(StoreOperation.SetCursor(Queue.Name, name, cursor), _flush);
            }
        }
    }

    // ---------------------------------------------------------------- recovery

    /// <summary>Recovery is done: the store forgets the deduplication ids that expired before <paramref name="now"/>.</summary>
    public void ForgetIds(DateTimeOffset now) => _writer.TryPost(StoreOperation.ForgetIds(Queue.Name, now), _flush);

    /// <summary>A stored message as the queue's message type, with its sequence.</summary>
    public Message<T> Restore(StoredMessage stored) => new(
        stored.Id,
        Queue.Name,
        stored.Event,
        Read(stored),
        stored.Sequence,
        stored.Timestamp.UtcTicks,
        Frozen(stored.Headers),
        stored.ExpiresAt?.UtcTicks ?? 0);

    /// <summary>A stored held message, as the draft it was.</summary>
    public Draft<T> RestoreHeld(StoredMessage held) =>
        new(held.Event, Read(held), Frozen(held.Headers), held.Id, held.ExpiresAt?.UtcTicks ?? 0, held.DueAt?.UtcTicks ?? 0);

    private T Read(StoredMessage stored)
    {
        try
        {
            return _serializer.Deserialize(stored.Payload.Span);
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            throw new MessageStoreException(
                $"Stored message {stored.Sequence} ('{stored.Event}', id {stored.Id}) of queue '{Queue.Name}' cannot be read as {typeof(T).Name}: {exception.Message} " +
                "Declare the queue with the payload type (and serializer) it was stored with.",
                exception);
        }
    }

    private static FrozenDictionary<string, string> Frozen(IReadOnlyDictionary<string, string> headers) =>
        headers.Count == 0 ? FrozenDictionary<string, string>.Empty : headers.ToFrozenDictionary(StringComparer.Ordinal);
}
