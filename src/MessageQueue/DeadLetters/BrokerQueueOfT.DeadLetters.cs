using System.Collections.Frozen;
using System.Globalization;

namespace MessageQueue;

/// <summary>
/// Dead letters of a queue: what goes to its dead-letter queue (rejected, out of attempts, expired, dropped for lack
/// of room when the queue dead-letters its drops), with why and its history in headers (<see cref="DeadLetterHeaders"/>),
/// and replay, which moves dead letters back.
/// </summary>
internal sealed partial class BrokerQueue<T>
{
    /// <summary>A list to collect overflow drops in, to dead-letter them after the locks; null when the queue does not dead-letter its drops.</summary>
    internal List<OverflowDeadLetter<T>>? StartOverflowDeadLetters() => _deadLetterDrops ? [] : null;

    /// <summary>Dead-letters what overflow dropped (<see cref="QueueOptions.DeadLetterDrops"/>). Called without any lock.</summary>
    internal void DeadLetterOverflow(List<OverflowDeadLetter<T>>? deadLetters)
    {
        foreach (OverflowDeadLetter<T> deadLetter in deadLetters ?? [])
        {
            DeadLetter(deadLetter.Held.Message, deadLetter.Held.Deliveries, DeadLetterReasons.Overflow, null, deadLetter.Subscription, deadLetter.SubscriptionKey, deadLetter.Held.History);
            _events.Released(Name, deadLetter.Held.Message);
        }
    }

    /// <summary>
    /// Moves a message into this queue's dead-letter queue, with why and its history in headers. Called
    /// without any lock. Without a dead-letter queue (in a dead-letter queue itself, or a queue declared
    /// with DeadLetters off) the message has nowhere to go: it is dropped, counted and raised.
    /// </summary>
    internal void DeadLetter(Message<T> message, int attempts, string reason, string? detail, string? subscription, SubscriptionKey? subscriptionKey, DeliveryHistory? history)
    {
        if (DeadLetterQueue is null)
        {
            DropReason dropReason = reason == DeadLetterReasons.Expired ? DropReason.Expired : DropReason.DeadLetterDiscarded;
            Interlocked.Increment(ref _dropped);
            _events.Dropped(new MessageDroppedEventArgs(Name, subscription ?? string.Empty, message.Id, message.Sequence, message.Event, dropReason));
            return;
        }

        Interlocked.Increment(ref _deadLettered);
        _events.DeadLettering(this, subscription, subscriptionKey, message, attempts, reason);
        FrozenDictionary<string, string> headers = DeadLetterHeaders.Create(message, Name, subscription, attempts, reason, detail, history, _time);

        // A dead-letter queue evicts its oldest dead letter when full: this never waits or fails, and it is
        // accepted while the broker shuts down, so that a draining consumer can still reject.
        try
        {
            DeadLetterQueue.Log.TryAppend(new Draft<T>(message.Event, message.Payload, headers, message.Id), out _, evict: true, out _);
            _events.DeadLettered(this, subscription, message, attempts, reason);
        }
        catch (Exception error) when (error is MessageStoreException or ArgumentException)
        {
            // A durable dead-letter queue whose store failed earlier, or a limit lowered since the message was accepted
            // (BrokerOptions.MaxPersistedPayloadSize, say). Dead-lettering runs in acks, nacks and timers, which must
            // not throw: the dead letter is dropped, counted and raised instead.
            Interlocked.Decrement(ref _deadLettered);
            Interlocked.Increment(ref _dropped);
            _events.Dropped(new MessageDroppedEventArgs(Name, subscription ?? string.Empty, message.Id, message.Sequence, message.Event, DropReason.DeadLetterDiscarded));
        }
    }

    // ---------------------------------------------------------------- replay

    public override async ValueTask<int> ReplayDeadLettersAsync(string? filter, int maxMessages, CancellationToken cancellationToken)
    {
        BrokerQueue<T> deadLetters = DeadLetterQueue ?? throw new InvalidOperationException(
            $"Queue '{Name}' has no dead-letter queue (it was declared with QueueOptions.DeadLetters off), so there is nothing to replay.");
        TopicFilter? topic = filter is null ? null : TopicFilter.Parse(filter);
        await _replayGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            int moved = 0;
            foreach (Message<T> deadLetter in deadLetters.Log.Peek(topic, maxMessages))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!deadLetters.Log.Contains(deadLetter))
                {
                    continue; // evicted by the dead-letter queue's bound meanwhile
                }

                // Back to the durable subscription that dead-lettered it, if it still exists: the others
                // settled the message already. Otherwise (an ephemeral subscription, since ended, or one
                // deleted) it is published anew, to every subscription that matches it.
                var draft = new Draft<T>(deadLetter.Event, deadLetter.Payload, DeadLetterHeaders.ForReplay(deadLetter.Headers), deadLetter.Id, Target: SourceSubscriptionOf(deadLetter));

                // Published first, removed second: a failure in between leaves a dead letter, never nothing.
                try
                {
                    await PublishAsync(draft, _publishTimeout, cancellationToken).ConfigureAwait(false);
                }
                catch (QueueFullException full) when (moved > 0)
                {
                    throw new QueueFullException(
                        Name,
                        string.Create(CultureInfo.InvariantCulture, $"Replay moved {moved} dead letter(s) back into queue '{Name}' and then found it full; the rest are still in '{deadLetters.Name}'. Replay again once its subscribers have caught up. ({full.Message})"),
                        full);
                }

                deadLetters.Log.Remove(deadLetter);
                moved++;
            }

            return moved;
        }
        finally
        {
            _replayGate.Release();
        }
    }

    /// <summary>The durable subscription a dead letter came from, if it still exists.</summary>
    private SubscriptionState<T>? SourceSubscriptionOf(Message<T> deadLetter)
    {
        if (!deadLetter.Headers.TryGetValue(MessageHeaders.SourceSubscription, out string? name) || name.Length == 0)
        {
            return null;
        }

        lock (_gate)
        {
            return _durable.TryGetValue(name, out SubscriptionState<T>? subscription) && !subscription.IsDeleted ? subscription : null;
        }
    }

    /// <summary>
    /// A held message that a full Reject queue dropped when it became due: dead-lettered when the queue dead-letters
    /// its drops (<see cref="QueueOptions.DeadLetterDrops"/>).
    /// </summary>
    internal void DeadLetterHeldDrop(in Draft<T> draft)
    {
        if (_deadLetterDrops)
        {
            DeadLetter(new Message<T>(draft.Id, Name, draft.Event, draft.Payload, 0, _time.GetUtcNow().UtcTicks, draft.Headers, draft.ExpiresAt), 0, DeadLetterReasons.Overflow, null, null, null, null);
        }
    }

    /// <summary>Dead-letters messages a leaving consumer held on their last attempt. Called without any lock.</summary>
    internal void DeadLetterAll(List<Consumer<T>.Unsettled>? deadLetters, SubscriptionState<T> subscription)
    {
        foreach (Consumer<T>.Unsettled deadLetter in deadLetters ?? [])
        {
            DeadLetter(deadLetter.Message, deadLetter.Deliveries, DeadLetterReasons.MaxDeliveries, null, subscription.Name, subscription.Key, deadLetter.History);
            Release(deadLetter.Message, subscription.Name);
        }
    }
}
