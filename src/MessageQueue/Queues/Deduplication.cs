using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// The ids a queue published within its deduplication window, with their receipts. Bounded by time and by
/// count: ids older than the window are forgotten, and past the capacity the oldest ones go first. Its own
/// lock, taken alone; nothing here runs user code.
/// </summary>
internal sealed class Deduplication
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly long _window; // in TimeProvider timestamp units
    private readonly int _capacity;
    private readonly Dictionary<Guid, Entry> _entries = [];
    private readonly Queue<(Guid Id, long RememberedAt)> _order = new();

    public Deduplication(TimeSpan window, int capacity, TimeProvider time)
    {
        _time = time;
        _window = (long)(window.Ticks * ((double)time.TimestampFrequency / TimeSpan.TicksPerSecond));
        _capacity = capacity;
    }

    public enum Claim
    {
        /// <summary>The caller publishes, then calls Complete or Abandon.</summary>
        Mine,

        /// <summary>Published within the window: here is its receipt.</summary>
        Duplicate,

        /// <summary>Another publish of this id is in progress: wait for its outcome.</summary>
        InFlight,
    }

    private sealed class Entry
    {
        public TaskCompletionSource<PublishReceipt?>? Pending { get; set; }

        public PublishReceipt Receipt { get; set; }

        public long RememberedAt { get; set; }
    }

    public Claim TryClaim(Guid id, out PublishReceipt earlier, out Task<PublishReceipt?>? inFlight)
    {
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            ForgetExpiredLocked(now);
            if (_entries.TryGetValue(id, out Entry? entry))
            {
                earlier = entry.Receipt;
                inFlight = entry.Pending?.Task;
                return inFlight is null ? Claim.Duplicate : Claim.InFlight;
            }

            _entries[id] = new Entry { Pending = new TaskCompletionSource<PublishReceipt?>(TaskCreationOptions.RunContinuationsAsynchronously) };
            earlier = default;
            inFlight = null;
            return Claim.Mine;
        }
    }

    /// <summary>The claimed publish succeeded: remember its receipt for the window.</summary>
    public void Complete(Guid id, PublishReceipt receipt)
    {
        long now = _time.GetTimestamp();
        TaskCompletionSource<PublishReceipt?>? pending;
        lock (_gate)
        {
            Entry entry = _entries[id];
            Debug.Assert(entry.Pending is not null);
            pending = entry.Pending;
            entry.Pending = null;
            entry.Receipt = receipt;
            entry.RememberedAt = now;
            _order.Enqueue((id, now));
            while (_order.Count > _capacity)
            {
                Forget(_order.Dequeue());
            }
        }

        pending.TrySetResult(receipt);
    }

    /// <summary>Recovery: remembers an id read back from the store for what is left of its window. Call in the order the ids were remembered.</summary>
    public void Restore(Guid id, PublishReceipt receipt, TimeSpan remaining)
    {
        long now = _time.GetTimestamp();
        long left = (long)(remaining.Ticks * ((double)_time.TimestampFrequency / TimeSpan.TicksPerSecond));
        long rememberedAt = now - Math.Max(0, _window - left);
        lock (_gate)
        {
            if (left <= 0 || !_entries.TryAdd(id, new Entry { Receipt = receipt, RememberedAt = rememberedAt }))
            {
                return;
            }

            _order.Enqueue((id, rememberedAt));
            while (_order.Count > _capacity)
            {
                Forget(_order.Dequeue());
            }
        }
    }

    /// <summary>The claimed publish failed: forget the id, and let a publish waiting on it try itself.</summary>
    public void Abandon(Guid id)
    {
        TaskCompletionSource<PublishReceipt?>? pending;
        lock (_gate)
        {
            pending = _entries.Remove(id, out Entry? entry) ? entry.Pending : null;
        }

        pending?.TrySetResult(null);
    }

    private void ForgetExpiredLocked(long now)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread, "called with its lock held");
        while (_order.TryPeek(out (Guid Id, long RememberedAt) oldest) && now - oldest.RememberedAt >= _window)
        {
            Forget(_order.Dequeue());
        }
    }

    /// <summary>Forgets an id, unless it was published again since (a newer entry, or one in progress).</summary>
    private void Forget((Guid Id, long RememberedAt) remembered)
    {
        if (_entries.TryGetValue(remembered.Id, out Entry? entry) && entry.Pending is null && entry.RememberedAt == remembered.RememberedAt)
        {
            _entries.Remove(remembered.Id);
        }
    }
}
