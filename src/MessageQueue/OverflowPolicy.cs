namespace MessageQueue;

/// <summary>What a queue does with a publish when it already holds <see cref="QueueOptions.MaxMessages"/> messages.</summary>
public enum OverflowPolicy
{
    /// <summary>
    /// The publish waits for room, up to <see cref="QueueOptions.PublishTimeout"/> and for as long as its
    /// cancellation token allows, then throws <see cref="QueueFullException"/>. Waiting publishers are
    /// served in arrival order. <see cref="Broker.TryPublish{T}(string, string, T, out PublishReceipt)"/>
    /// returns <see langword="false"/> instead of waiting. This is the default: nothing is lost, and a
    /// fast producer is slowed to the pace of its consumers.
    /// </summary>
    Wait = 0,

    /// <summary>The publish fails at once with <see cref="QueueFullException"/>; nothing is enqueued.</summary>
    Reject = 1,

    /// <summary>
    /// The oldest message that is still waiting for delivery is dropped to make room. Each drop is
    /// counted in the snapshot and raised as <see cref="Broker.MessageDropped"/>. Messages already in
    /// flight with a consumer are never dropped; if every retained message is in flight, the new
    /// message is admitted and the queue exceeds its bound by at most the consumers' in-flight limits.
    /// </summary>
    DropOldest = 2,
}
