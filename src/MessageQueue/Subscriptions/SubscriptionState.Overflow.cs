namespace MessageQueue;

/// <summary>What waits, taken out of line: the oldest peeked at and dropped when the queue overflows or passes its retention limits, and a replayed dead letter removed wherever it waits.</summary>
internal sealed partial class SubscriptionState<T>
{
    // ---------------------------------------------------------------- overflow

    /// <summary>The oldest message waiting for a consumer, or null.</summary>
    public Message<T>? PeekOldestWaiting()
    {
        lock (Gate)
        {
            if (_returned.TryPeek(out Returned returned, out _))
            {
                return returned.Message;
            }

            return _backlog.TryPeek(out Message<T>? message) ? message : null;
        }
    }

    /// <summary>
    /// Drops every waiting message whose sequence is at most <paramref name="sequence"/>. Backlogs are in
    /// sequence order, so these are always at the heads of the returned set and the backlog.
    /// </summary>
    /// <returns>The dropped messages, with how often each was delivered; the caller releases them.</returns>
    public List<Consumer<T>.Unsettled> DropWaitingUpTo(long sequence)
    {
        var dropped = new List<Consumer<T>.Unsettled>();
        lock (Gate)
        {
            while (_returned.TryPeek(out Returned returned, out long returnedSequence) && returnedSequence <= sequence)
            {
                _returned.Dequeue();
                dropped.Add(Held(returned));
            }

            while (_backlog.TryPeek(out Message<T>? head) && head.Sequence <= sequence)
            {
                dropped.Add(new(_backlog.Dequeue(), 0, null));
            }

            Interlocked.Add(ref _waiting.Value, -dropped.Count);
            _dropped += dropped.Count;

            // A dropped head may have held back the rest (a count still being stored); let them go now.
            DispatchLocked();
        }

        return dropped;
    }

    /// <summary>Removes one waiting message wherever it is in line (a replayed dead letter). Not on the hot path: O(n).</summary>
    /// <returns>True when the message was waiting here; the caller releases it.</returns>
    public bool RemoveWaiting(Message<T> message)
    {
        lock (Gate)
        {
            bool removed = false;
            if (_returned.UnorderedItems.Any(item => item.Element.Message == message))
            {
                var others = _returned.UnorderedItems.Where(item => item.Element.Message != message).ToList();
                _returned.Clear();
                _returned.EnqueueRange(others);
                removed = true;
            }
            else if (_backlog.Contains(message))
            {
                Message<T>[] others = [.. _backlog.Where(m => m != message)];
                _backlog.Clear();
                foreach (Message<T> other in others)
                {
                    _backlog.Enqueue(other);
                }

                removed = true;
            }

            if (removed)
            {
                Interlocked.Decrement(ref _waiting.Value);
                DispatchLocked();
            }

            return removed;
        }
    }
}
