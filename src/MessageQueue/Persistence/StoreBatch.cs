namespace MessageQueue.Persistence;

/// <summary>Operations that a store applies in order, in one atomic commit (<see cref="IMessageStore.Write"/>).</summary>
public sealed class StoreBatch
{
    /// <summary>Gets the operations, in the order the broker made them.</summary>
    /// <exception cref="ArgumentNullException">Set to <see langword="null"/>.</exception>
    public required IReadOnlyList<StoreOperation> Operations
    {
        get;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(Operations));
            field = value;
        }
    }

    /// <summary>Gets whether the commit must reach the disk before <see cref="IMessageStore.Write"/> returns (<see cref="Durability.Fsync"/>).</summary>
    /// <value>The default is <see langword="false"/>: the commit must survive the process ending (<see cref="Durability.Committed"/>), not the machine losing power.</value>
    public bool Flush { get; init; }
}
