namespace MessageQueue.Persistence;

/// <summary>
/// Where a queue's messages live besides memory: nowhere (<see cref="MemoryQueueStorage{T}"/>), or a store that a
/// restart reads back (<see cref="DurableQueueStorage{T}"/>). One sealed strategy chosen when the queue is declared,
/// from its <see cref="Durability"/>.
/// </summary>
/// <remarks>
/// The queue asks its storage to carry a message the rest of the way once it holds room for it: an in-memory queue
/// hands it to its subscriptions at once, a durable one stores it first and hands it over after the commit. Every
/// settlement, cursor and subscription change is reported here too; in memory those reports cost a virtual call that
/// does nothing.
/// </remarks>
internal abstract class QueueStorage<T>
{
    private protected QueueStorage(BrokerQueue<T> queue) => Queue = queue;

    /// <summary>The queue this storage serves.</summary>
    protected BrokerQueue<T> Queue { get; }

    /// <summary>
    /// Taking a durable message's sequence and posting it to the store happen together under this lock, so the store
    /// receives the queue's messages in order; a new subscription reads the last sequence under it too.
    /// </summary>
    public Lock SequenceGate { get; } = new();

    /// <summary>Whether messages are stored, so that a publish completes only after a commit.</summary>
    public abstract bool IsDurable { get; }

    /// <summary>An admitted message (it holds room) goes on to the subscriptions on <paramref name="route"/>.</summary>
    /// <param name="route">Where it goes.</param>
    /// <param name="draft">The message.</param>
    /// <param name="ticket">The store ticket a publish waits for before it completes; 0 when there is none.</param>
    public abstract PublishReceipt Deliver(Route<T> route, in Draft<T> draft, out long ticket);

    /// <summary>An admitted message is held for delayed delivery.</summary>
    public abstract PublishReceipt Schedule(in Draft<T> draft, out long ticket);

    /// <summary>A message goes into a limits-retention log: evicting its oldest message when full if <paramref name="evict"/>, refusing otherwise.</summary>
    public abstract bool TryAppendToLog(LimitsRetention<T> log, in Draft<T> draft, bool evict, out PublishReceipt receipt, out long ticket);

    /// <summary>
    /// Takes the next sequence for a publish that stores no message (it matched no subscription). A durable queue tells
    /// the store, so the sequence is never handed out again, even by a later broker on the same store.
    /// </summary>
    /// <param name="ticket">The store ticket the publish waits for before it completes; 0 when there is none.</param>
    public abstract long TakeUnstoredSequence(out long ticket);

    /// <summary>Waits for the commit of <paramref name="ticket"/>.</summary>
    /// <exception cref="MessageStoreException">The commit failed; the message was not stored.</exception>
    public abstract ValueTask WaitForCommitAsync(long ticket);

    /// <summary>A subscription let go of a message: gone from the queue for good (<paramref name="gone"/>), or settled by one durable subscription.</summary>
    /// <param name="message">The message.</param>
    /// <param name="subscription">The durable subscription that settled it, if one did.</param>
    /// <param name="gone">Whether it left the queue for good.</param>
    /// <param name="last">Whether nothing holds it any more (it left memory), even if it stays in the queue or was evicted.</param>
    public abstract void Released(Message<T> message, string? subscription, bool gone, bool last);

    /// <summary>A message left the queue for good without being settled (evicted, replayed, unwanted).</summary>
    public abstract void Removed(long sequence);

    /// <summary>A held message entered the queue, or was dropped.</summary>
    public abstract void Unscheduled(Guid id);

    /// <summary>
    /// A message came back to a durable subscription after <paramref name="deliveries"/> deliveries. <paramref name="target"/>,
    /// if given, hears when the count is committed (or never will be). False, and no call, when nothing is stored (a
    /// queue in memory) or the store takes nothing more.
    /// </summary>
    public abstract bool DeliveriesCounted(string subscription, long sequence, int deliveries, IStoreCommitTarget? target = null, object? state = null);

    /// <summary>A new durable subscription; returns the ticket its subscribe call waits for, or 0.</summary>
    public abstract long SubscriptionCreated(SubscriptionState<T> subscription);

    /// <summary>A durable subscription was deleted.</summary>
    public abstract void SubscriptionDeleted(string name);

    /// <summary>On the store's writer thread, before each batch: the cursors of durable subscriptions that moved.</summary>
    public abstract void PostCursors(SubscriptionState<T>[] subscriptions);
}
