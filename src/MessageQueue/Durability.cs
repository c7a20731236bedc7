namespace MessageQueue;

/// <summary>How far a queue's messages and settlements go before a publish completes.</summary>
/// <remarks>
/// Anything but <see cref="InMemory"/> needs a store (<see cref="BrokerOptions.Store"/>). The README's
/// "Persistence" section lists what each level survives.
/// </remarks>
public enum Durability
{
    /// <summary>Kept in memory only; everything is gone when the process ends.</summary>
    InMemory = 0,

    /// <summary>
    /// A publish completes once the store committed it (SQLite: a WAL commit with <c>synchronous=NORMAL</c>).
    /// Survives the process crashing; a power loss or an operating-system crash may lose the last commits.
    /// </summary>
    Committed = 1,

    /// <summary>
    /// As <see cref="Committed"/>, and every commit is flushed to the disk before a publish completes
    /// (SQLite: <c>synchronous=FULL</c>). Survives a power loss too.
    /// </summary>
    Fsync = 2,
}
