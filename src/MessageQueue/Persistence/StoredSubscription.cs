using System.Diagnostics;

namespace MessageQueue.Persistence;

/// <summary>A durable subscription as a store keeps it (<see cref="StoreOperationKind.SaveSubscription"/>).</summary>
/// <remarks>Equality is by reference; compare the members to tell whether two instances describe the same subscription.</remarks>
[DebuggerDisplay("{Queue,nq}/{Name,nq}")]
public sealed class StoredSubscription
{
    /// <summary>Gets the queue.</summary>
    public required string Queue { get; init; }

    /// <summary>Gets the subscription's name, unique within its queue.</summary>
    public required string Name { get; init; }

    /// <summary>Gets its topic filters, in the order they were given.</summary>
    public required IReadOnlyList<string> Filters { get; init; }

    /// <summary>Gets the sequence after which it starts: it holds the matching messages whose sequence is greater than this.</summary>
    public required long StartAfter { get; init; }
}
