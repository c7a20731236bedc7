namespace MessageQueue.Persistence;

/// <summary>Operations that a store applies in order, in one atomic commit.</summary>
/// <param name="operations">The operations, in the order the broker made them.</param>
/// <param name="flush">Whether the commit must reach the disk before <see cref="IMessageStore.Write"/> returns (<see cref="Durability.Fsync"/>).</param>
public sealed class StoreBatch(IReadOnlyList<StoreOperation> operations, bool flush)
{
    /// <summary>Gets the operations, in the order the broker made them.</summary>
    public IReadOnlyList<StoreOperation> Operations { get; } = operations ?? throw new ArgumentNullException(nameof(operations));

    /// <summary>Gets whether the commit must reach the disk before <see cref="IMessageStore.Write"/> returns.</summary>
    public bool Flush { get; } = flush;
}
