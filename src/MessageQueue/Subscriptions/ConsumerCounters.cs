namespace MessageQueue;

/// <summary>What one consumer has settled. Kept per consumer so that competing consumers never share a counter.</summary>
internal struct ConsumerCounters
{
    public long Acked;
    public long Nacked;
    public long DeadLettered;
    public long TimedOut;
    public long Expired;

    public void Add(in ConsumerCounters other)
    {
        Acked += other.Acked;
        Nacked += other.Nacked;
        DeadLettered += other.DeadLettered;
        TimedOut += other.TimedOut;
        Expired += other.Expired;
    }
}
