using System.Collections.Frozen;
using System.Diagnostics;

namespace MessageQueue.Persistence;

/// <summary>A message as a store keeps it: the payload is serialized bytes.</summary>
/// <remarks>
/// <para>The broker creates these for <see cref="StoreOperationKind.Append"/> and <see cref="StoreOperationKind.Schedule"/>,
/// and a store creates them again in <see cref="IMessageStore.Load"/> from what it kept, every member as it was
/// written.</para>
/// <para>Equality is by reference: compare the members (the payload's bytes with <c>Span.SequenceEqual</c>) to tell
/// whether two instances hold the same message.</para>
/// </remarks>
[DebuggerDisplay("{Queue,nq} #{Sequence} {Event,nq} ({Id})")]
public sealed class StoredMessage
{
    /// <summary>Gets the queue the message belongs to.</summary>
    public required string Queue { get; init; }

    /// <summary>Gets the message's sequence in its queue; 0 for a message held for delayed delivery, which gets its sequence when it enters the queue.</summary>
    public required long Sequence { get; init; }

    /// <summary>Gets the message id.</summary>
    public required Guid Id { get; init; }

    /// <summary>Gets the event name.</summary>
    public required string Event { get; init; }

    /// <summary>Gets the payload, serialized by the queue's payload serializer.</summary>
    public required ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>Gets when the message was published.</summary>
    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>Gets the headers.</summary>
    /// <value>The default is an empty dictionary.</value>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = FrozenDictionary<string, string>.Empty;

    /// <summary>Gets when the message expires, if it has a time to live.</summary>
    /// <value>The default is <see langword="null"/>: it does not expire.</value>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Gets when the message enters its queue, if it was published for delayed delivery.</summary>
    /// <value>
    /// The default is <see langword="null"/>: it was not. Set on a held message (<see cref="StoreOperationKind.Schedule"/>),
    /// and on the <see cref="StoreOperationKind.Append"/> that moves a held message into its queue.
    /// </value>
    public DateTimeOffset? DueAt { get; init; }

    /// <summary>
    /// Gets until when the message's id is remembered to drop duplicates, if it was published with a message id into
    /// a queue with a deduplication window.
    /// </summary>
    /// <value>The default is <see langword="null"/>: its id is not remembered.</value>
    public DateTimeOffset? DeduplicateUntil { get; init; }
}
