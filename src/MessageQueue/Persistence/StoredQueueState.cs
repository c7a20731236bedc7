using System.Diagnostics;

namespace MessageQueue.Persistence;

/// <summary>Everything a store holds for one queue, as <see cref="IMessageStore.Load"/> reads it back.</summary>
/// <remarks>Equality is by reference.</remarks>
[DebuggerDisplay("{Name,nq}: last sequence {LastSequence}, {Messages.Count} message(s)")]
public sealed class StoredQueueState
{
    /// <summary>Gets the queue's name.</summary>
    public required string Name { get; init; }

    /// <summary>Gets the highest sequence ever appended to the queue, even if that message is gone. Sequences are never reused.</summary>
    public required long LastSequence { get; init; }

    /// <summary>Gets its messages, in sequence order.</summary>
    /// <value>The default is an empty list. Empty in what <see cref="IPagedMessageStore.LoadQueues"/> returns.</value>
    public IReadOnlyList<StoredMessage> Messages { get; init; } = [];

    /// <summary>Gets how many messages the store holds for the queue, when they are not in <see cref="Messages"/>.</summary>
    /// <value>
    /// The default is 0. <see cref="IPagedMessageStore.LoadQueues"/> fills it in (the queue counts them against
    /// <see cref="QueueOptions.MaxMessages"/> before it has read them); elsewhere it is not used.
    /// </value>
    public long MessageCount { get; init; }

    /// <summary>Gets its messages held for delayed delivery, in the order they were scheduled.</summary>
    /// <value>The default is an empty list.</value>
    public IReadOnlyList<StoredMessage> Scheduled { get; init; } = [];

    /// <summary>Gets its durable subscriptions, in any order.</summary>
    /// <value>The default is an empty list.</value>
    public IReadOnlyList<StoredSubscriptionState> Subscriptions { get; init; } = [];

    /// <summary>Gets the message ids it remembers to drop duplicates, with their sequence and until when, in any order.</summary>
    /// <value>The default is an empty list.</value>
    public IReadOnlyList<StoredId> DeduplicationIds { get; init; } = [];
}
