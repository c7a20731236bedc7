namespace MessageQueue.Persistence;

/// <summary>
/// A store that reads a queue's messages back a page at a time, so that a durable queue keeps only a window of them in
/// memory (<see cref="QueueOptions.MaxMessagesInMemory"/>) and leaves the rest in the store until its consumers catch up.
/// <c>MessageQueue.Sqlite</c>'s store and <see cref="InMemoryMessageStore"/> implement it.
/// </summary>
/// <remarks>
/// <para>With a store that implements this interface the broker calls <see cref="LoadQueues"/> at start instead of
/// <see cref="IMessageStore.Load"/>, and <see cref="ReadMessages"/> whenever a durable queue needs its next page: when it
/// is declared, and later as its consumers release the messages of the window. Reads run on the broker's writer thread,
/// between two <see cref="IMessageStore.Write"/> calls, so a store never needs its own locking for them either; a read
/// sees everything the writes before it committed.</para>
/// <para>A store that implements only <see cref="IMessageStore"/> still works: each durable queue then holds all its
/// messages in memory, as <see cref="IMessageStore.Load"/> returns them.</para>
/// </remarks>
public interface IPagedMessageStore : IMessageStore
{
    /// <summary>
    /// Opens the store if needed and reads back everything it holds except the messages of the queues: the entries have
    /// no <see cref="StoredQueueState.Messages"/>, and their subscriptions have no acks and no delivery counts, but each
    /// says how many messages the store holds for it (<see cref="StoredQueueState.MessageCount"/>).
    /// </summary>
    /// <returns>The stored queues, each with its durable subscriptions and their cursors, held messages and deduplication ids.</returns>
    /// <exception cref="MessageStoreException">The store cannot be opened or read.</exception>
    IReadOnlyList<StoredQueueState> LoadQueues();

    /// <summary>
    /// Reads one page of a queue's messages: those with a sequence greater than <paramref name="afterSequence"/>, in sequence
    /// order, at most <paramref name="maxMessages"/> of them, with the acks and delivery counts its durable subscriptions
    /// have for exactly those messages.
    /// </summary>
    /// <param name="queue">The queue's name.</param>
    /// <param name="afterSequence">The page starts after this sequence; 0 for the first page.</param>
    /// <param name="maxMessages">The most messages to return; at least 1.</param>
    /// <returns>
    /// The page, as a <see cref="StoredQueueState"/> with <see cref="StoredQueueState.Messages"/> and
    /// <see cref="StoredQueueState.Subscriptions"/> (each with the <see cref="StoredSubscriptionState.Acked"/> and
    /// <see cref="StoredSubscriptionState.Deliveries"/> of the page's messages) filled in. Fewer than
    /// <paramref name="maxMessages"/> messages means the queue holds nothing after the page; an unknown queue returns an
    /// empty page.
    /// </returns>
    /// <exception cref="MessageStoreException">The store cannot be read.</exception>
    StoredQueueState ReadMessages(string queue, long afterSequence, int maxMessages);
}
