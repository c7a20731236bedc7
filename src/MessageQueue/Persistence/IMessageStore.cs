namespace MessageQueue.Persistence;

/// <summary>
/// Where a broker keeps the messages, settlements and durable subscriptions of its durable queues, so that
/// they come back after a restart. <c>MessageQueue.Sqlite</c> provides one that survives a crash;
/// <see cref="InMemoryMessageStore"/> keeps the same contract in memory.
/// </summary>
/// <remarks>
/// <para>The broker drives the store: it calls <see cref="Load"/> once, when it starts, and then
/// <see cref="Write"/> from a single writer thread, one batch at a time (group commit: the operations of
/// many publishers and consumers in one batch). A store never needs its own locking for these calls.</para>
/// <para>Payloads are bytes, serialized by the queue's payload serializer; a store never needs or keeps a
/// type name.</para>
/// <para>The types a store reads and returns (<see cref="StoredMessage"/>, <see cref="StoredQueueState"/> and the
/// others) are classes with <see langword="init"/> properties. A member added to them in a later version is
/// optional, with a documented default, so a store written before it still compiles and runs; it reads the new
/// member back as its default until it is taught to keep it. The repository's <c>docs/stores.md</c> describes the
/// whole contract, and the contract tests a new store can reuse.</para>
/// </remarks>
public interface IMessageStore : IDisposable
{
    /// <summary>Opens the store if needed and reads back everything it holds, one entry per queue.</summary>
    /// <returns>The stored queues, each with its messages, durable subscriptions and deduplication ids.</returns>
    /// <exception cref="MessageStoreException">The store cannot be opened or read.</exception>
    IReadOnlyList<StoredQueueState> Load();

    /// <summary>
    /// Applies a batch of operations, in order, atomically: all of them or none. The batch's operations are valid during
    /// the call only (the broker reuses their storage for the next batch): a store that keeps any copies it.
    /// </summary>
    /// <param name="batch">The operations.</param>
    /// <exception cref="MessageStoreException">Nothing of the batch was stored.</exception>
    void Write(StoreBatch batch);
}
