namespace MessageQueue.Persistence;

/// <summary>
/// <see cref="Durability.InMemory"/>: messages live as long as the process. A message is handed to its subscriptions as
/// soon as it holds room, and nothing is reported anywhere else.
/// </summary>
internal sealed class MemoryQueueStorage<T>(BrokerQueue<T> queue) : QueueStorage<T>(queue)
{
    public override bool IsDurable => false;

    public override PublishReceipt Deliver(Route<T> route, in Draft<T> draft, out long ticket)
    {
        ticket = 0;
        return Queue.HandOver(route, draft);
    }

    public override PublishReceipt Schedule(in Draft<T> draft, out long ticket)
    {
        ticket = 0;
        return Queue.Hold(draft);
    }

    public override bool TryAppendToLog(LimitsRetention<T> log, in Draft<T> draft, bool evict, out PublishReceipt receipt, out long ticket)
    {
        ticket = 0;
        return log.TryAppendNow(draft, evict, out receipt);
    }

    public override ValueTask WaitForCommitAsync(long ticket) => default;

    public override long TakeUnstoredSequence(out long ticket)
    {
        ticket = 0;
        return Queue.NextSequence();
    }

    public override void Released(Message<T> message, string? subscription, bool gone, bool last)
    {
    }

    public override void Removed(long sequence)
    {
    }

    public override void Unscheduled(Guid id)
    {
    }

    public override bool DeliveriesCounted(string subscription, long sequence, int deliveries, IStoreCommitTarget? target = null, object? state = null) => false;

    public override long SubscriptionCreated(SubscriptionState<T> subscription) => 0;

    public override void SubscriptionDeleted(string name)
    {
    }

    public override void PostCursors(SubscriptionState<T>[] subscriptions)
    {
    }
}
