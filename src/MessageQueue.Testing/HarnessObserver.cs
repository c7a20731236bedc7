namespace MessageQueue.Testing;

/// <summary>
/// Records every step of every message in one broker, and keeps the counts the harness decides idleness by: how many
/// (message, subscription) pairs were handed out and how many were let go, how many nacked deliveries wait out a
/// backoff, and how many messages are held for delayed delivery. Everything is under one lock, so a reader sees all
/// counts at one instant. No user code runs under it: waiters are only signalled, and re-check on their own thread.
/// </summary>
internal sealed class HarnessObserver : BrokerObserver
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _clock;
    private readonly List<MessageRecord> _records = [];
    private long _handedOut;
    private long _letGo;
    private int _parked;
    private readonly Dictionary<SubscriptionKey, int> _parkedBySubscription = [];
    private int _scheduled;
    private TaskCompletionSource _changed = NewSignal();

    public HarnessObserver(TimeProvider clock) => _clock = clock;

    /// <summary>The counts, read together.</summary>
    public readonly record struct Counts(long Outstanding, int Parked, int Scheduled, int Records)
    {
        /// <summary>Every message settled by every subscription that took it, and nothing held for later.</summary>
        public bool IsIdle => Outstanding == 0 && Scheduled == 0;

        /// <summary>Nothing can move until the clock does: whatever is unsettled waits out a backoff, or is scheduled.</summary>
        public bool IsQuiet => Outstanding == Parked;
    }

    /// <summary>Reads the counts, and the signal that completes at the next change after them.</summary>
    public Counts Read(out Task changed)
    {
        lock (_gate)
        {
            changed = _changed.Task;
            return new Counts(_handedOut - _letGo, _parked, _scheduled, _records.Count);
        }
    }

    /// <summary>Reads the counts and how many deliveries of each subscription (by its snapshot's Key) wait out a backoff.</summary>
    public Counts Read(out Task changed, out Dictionary<SubscriptionKey, int> parked)
    {
        lock (_gate)
        {
            changed = _changed.Task;
            parked = new Dictionary<SubscriptionKey, int>(_parkedBySubscription);
            return new Counts(_handedOut - _letGo, _parked, _scheduled, _records.Count);
        }
    }

    public MessageRecord[] Snapshot()
    {
        lock (_gate)
        {
            return [.. _records];
        }
    }

    public override void Published(string queue, bool deadLetterQueue, Guid id, long sequence, string eventName, object? payload, Type payloadType, IReadOnlyDictionary<string, string> headers, int subscriptions)
    {
        DateTimeOffset now = _clock.GetUtcNow();
        lock (_gate)
        {
            _handedOut += subscriptions;

            // A dead letter is recorded once, as DeadLettered, from its source queue; its entry into the dead-letter queue
            // only moves the counts.
            if (!deadLetterQueue)
            {
                _records.Add(new MessageRecord(MessageRecordKind.Published, queue, null, null, id, sequence, eventName, payload, 0, null, null, headers, now, payloadType));
            }

            SignalLocked();
        }
    }

    public override void Referenced(int count)
    {
        lock (_gate)
        {
            _handedOut += count;
            SignalLocked();
        }
    }

    public override void Released(string queue, Guid id)
    {
        lock (_gate)
        {
            _letGo++;
            SignalLocked();
        }
    }

    public override void Scheduled(int delta)
    {
        lock (_gate)
        {
            _scheduled += delta;
            SignalLocked();
        }
    }

    public override void Parked(string queue, string? subscription, SubscriptionKey subscriptionKey, int delta)
    {
        lock (_gate)
        {
            _parked += delta;
            int now = _parkedBySubscription.GetValueOrDefault(subscriptionKey) + delta;
            if (now == 0)
            {
                _parkedBySubscription.Remove(subscriptionKey);
            }
            else
            {
                _parkedBySubscription[subscriptionKey] = now;
            }

            SignalLocked();
        }
    }

    public override void Delivered(string queue, string? subscription, SubscriptionKey subscriptionKey, Guid id, long sequence, string eventName, object? payload, Type payloadType, int attempt) =>
        Add(new MessageRecord(MessageRecordKind.Delivered, queue, subscription, subscriptionKey, id, sequence, eventName, payload, attempt, null, null, null, _clock.GetUtcNow(), payloadType));

    public override void Settled(ObservedSettlement kind, string queue, string? subscription, SubscriptionKey? subscriptionKey, Guid id, long sequence, string eventName, object? payload, Type payloadType, int attempt, TimeSpan? delay, string? reason)
    {
        MessageRecordKind recordKind = kind switch
        {
            ObservedSettlement.Acked => MessageRecordKind.Acked,
            ObservedSettlement.Nacked => MessageRecordKind.Nacked,
            ObservedSettlement.Rejected => MessageRecordKind.Rejected,
            ObservedSettlement.Extended => MessageRecordKind.Extended,
            ObservedSettlement.TimedOut => MessageRecordKind.TimedOut,
            _ => MessageRecordKind.DeadLettered,
        };
        Add(new MessageRecord(recordKind, queue, subscription, subscriptionKey, id, sequence, eventName, payload, attempt, delay, reason, null, _clock.GetUtcNow(), payloadType));
    }

    /// <summary>A drop, from the broker's <see cref="Broker.MessageDropped"/> event.</summary>
    public void Dropped(MessageDroppedEventArgs dropped) =>
        Add(new MessageRecord(MessageRecordKind.Dropped, dropped.Queue, string.IsNullOrEmpty(dropped.Subscription) ? null : dropped.Subscription, null, dropped.MessageId, dropped.Sequence, dropped.Event, null, 0, null, dropped.Reason.ToString(), null, _clock.GetUtcNow(), null));

    private void Add(MessageRecord record)
    {
        lock (_gate)
        {
            _records.Add(record);
            SignalLocked();
        }
    }

    private void SignalLocked()
    {
        // Continuations run asynchronously, never here under a broker's lock.
        _changed.TrySetResult();
        _changed = NewSignal();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
