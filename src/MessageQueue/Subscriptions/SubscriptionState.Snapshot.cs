namespace MessageQueue;

/// <summary>A subscription's snapshot: its counts and those of its consumers, read together under its lock.</summary>
internal sealed partial class SubscriptionState<T>
{
    // ---------------------------------------------------------------- snapshot

    public SubscriptionSnapshot GetSnapshot()
    {
        lock (Gate)
        {
            ConsumerCounters settled = _retired;
            int inFlight = 0;
            foreach (Consumer<T> consumer in _consumers)
            {
                settled.Add(consumer.Counters);
                inFlight += consumer.InFlightLocked;
            }

            return new SubscriptionSnapshot
            {
                Id = Key.Id,
                Queue = _queue.Name,
                Name = Name,
                IsDurable = Name is not null,
                Filters = FilterTexts,
                Consumers = _consumers.Length,
                Standby = _standby.Count,
                Backlog = (int)_waiting.Value,
                InFlight = inFlight,
                Delivered = _delivered,
                Redelivered = _redelivered,
                Acked = settled.Acked,
                Nacked = settled.Nacked,
                DeadLettered = settled.DeadLettered,
                TimedOut = settled.TimedOut,
                Expired = settled.Expired,
                Dropped = _dropped,
                HandlerFailures = Interlocked.Read(ref _handlerFailures),
            };
        }
    }
}
