using System.Collections.Frozen;
using System.Diagnostics;

namespace MessageQueue.Persistence;

/// <summary>A durable subscription read back from a store (<see cref="IMessageStore.Load"/>), with how far it got.</summary>
/// <remarks>Equality is by reference.</remarks>
[DebuggerDisplay("{Subscription.Queue,nq}/{Subscription.Name,nq} cursor {Cursor}")]
public sealed class StoredSubscriptionState
{
    /// <summary>Gets the subscription, as it was last saved.</summary>
    public required StoredSubscription Subscription { get; init; }

    /// <summary>
    /// Gets the highest sequence it had been delivered at least once: the highest <see cref="StoreOperationKind.SetCursor"/>
    /// it received, or 0 when it received none.
    /// </summary>
    public required long Cursor { get; init; }

    /// <summary>Gets the sequences of the stored messages it settled (<see cref="StoreOperationKind.Ack"/>) that are not yet removed.</summary>
    /// <value>The default is an empty set.</value>
    public IReadOnlySet<long> Acked { get; init; } = FrozenSet<long>.Empty;

    /// <summary>
    /// Gets, for each stored message that came back to it, how many times it had been delivered: the last
    /// <see cref="StoreOperationKind.SetDeliveries"/> of that message for this subscription.
    /// </summary>
    /// <value>The default is an empty dictionary.</value>
    public IReadOnlyDictionary<long, int> Deliveries { get; init; } = FrozenDictionary<long, int>.Empty;
}
