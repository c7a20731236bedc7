namespace MessageQueue;

/// <summary>
/// A publisher waiting for room in a full queue under <see cref="OverflowPolicy.Wait"/>. The queue
/// grants waiters in arrival order, reserving one unit of depth for each before completing it, so a
/// woken publisher never has to compete again. Continuations run asynchronously, never under the
/// queue's lock.
/// </summary>
internal sealed class PublishWaiter() : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
{
    /// <summary>The waiter's place in its queue's line, so that it can leave from anywhere in it.</summary>
    public LinkedListNode<PublishWaiter>? Node { get; set; }

    /// <summary>Hands the waiter a reservation. False when it already gave up.</summary>
    public bool TryGrant() => TrySetResult();

    /// <summary>Gives up waiting. False when a reservation was granted first; the caller then owns it.</summary>
    public bool TryAbandon() => TrySetCanceled();
}
