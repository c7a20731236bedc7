using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// The subscriptions of a queue: subscribe (durable subscriptions reattach, exclusive modes, a start position), detach,
/// delete, and what a subscription's own bound leaves to finish after the locks.
/// </summary>
internal sealed partial class BrokerQueue<T>
{
    /// <param name="client">The owning client.</param>
    /// <param name="filters">The filters.</param>
    /// <param name="options">The options.</param>
    /// <param name="storeTicket">For a new durable subscription of a durable queue, the store ticket to wait for; 0 otherwise.</param>
    public Consumer<T> Subscribe(BrokerClient client, string[] filters, SubscriptionOptions options, out long storeTicket)
    {
        storeTicket = 0;
        long now = _time.GetTimestamp();
        List<Consumer<T>.Unsettled>? deadLetters = null;
        List<Consumer<T>>? takenOver;
        SubscriptionState<T>? subscription;
        Consumer<T> consumer;
        lock (_gate)
        {
            ThrowIfClosed();
            if (options.Name is { } name)
            {
                if (_durable.TryGetValue(name, out subscription))
                {
                    if (!subscription.HasFilters(filters))
                    {
                        throw new InvalidOperationException(
                            $"Durable subscription '{name}' on queue '{Name}' already exists with the filters [{string.Join(", ", subscription.FilterTexts)}], " +
                            $"not [{string.Join(", ", filters)}]. Subscribe with the same filters to reattach, use another name, or delete the subscription first.");
                    }
                }
                else
                {
                    subscription = CreateSubscriptionLocked(name, filters, options);
                    _durable.Add(name, subscription);
                    storeTicket = _storage.SubscriptionCreated(subscription);
                }
            }
            else
            {
                subscription = CreateSubscriptionLocked(null, filters, options);
            }

            consumer = subscription.Attach(client, options, now, ref deadLetters, out takenOver);
        }

        // Outside the lock: the consumers replaced by a TakeOver learn why, and starting from retained
        // messages may have passed the subscription's own bound.
        DeadLetterAll(deadLetters, subscription);
        foreach (Consumer<T> replaced in takenOver ?? [])
        {
            replaced.Finish(new SubscriptionClosedException(
                Name,
                subscription.Name,
                SubscriptionCloseReason.TakenOver,
                $"Another consumer took over durable subscription '{subscription.Name}' on queue '{Name}' (ExclusiveMode.TakeOver); what this one held unsettled was delivered to it again."));
        }

        FinishPendingWork(subscription);
        return consumer;
    }

    /// <summary>Creates and registers a subscription; one with a start position first gets the retained messages from there.</summary>
    private SubscriptionState<T> CreateSubscriptionLocked(string? name, string[] filters, SubscriptionOptions options, string paramName = "options")
    {
        Debug.Assert(_gate.IsHeldByCurrentThread, "called with its lock held");
        StartPosition start = options.StartAt;
        _retention.ValidateStart(start, paramName);

        var subscription = new SubscriptionState<T>(this, ++_lastSubscriptionId, name, filters, options.MaxBacklog, options.BacklogOverflow);

        // Under the storage's sequence lock, so no durable publish takes a sequence between reading it here and the
        // subscription joining the routes: every later sequence reaches it, now and after a restart.
        lock (_storage.SequenceGate)
        {
            subscription.StartAfter = _retention.StartLocked(subscription, start);
            _routes.AddLocked(subscription);
        }

        return subscription;
    }

    private void RemoveSubscriptionLocked(SubscriptionState<T> subscription)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread, "called with its lock held");
        _routes.RemoveLocked(subscription);
        if (subscription.Name is { } name)
        {
            _durable.Remove(name);
            _storage.SubscriptionDeleted(name);
        }
    }

    /// <summary>
    /// Detaches a consumer. A durable subscription takes back what the consumer held, to deliver
    /// again; an ephemeral one ends, and the messages it still held are released.
    /// </summary>
    internal void Detach(Consumer<T> consumer)
    {
        List<Message<T>>? abandoned = null;
        List<Consumer<T>.Unsettled>? deadLetters = null;
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            SubscriptionState<T> subscription = consumer.State;
            if (!subscription.Detach(consumer, now, ref abandoned, ref deadLetters))
            {
                return;
            }

            if (subscription.Name is null)
            {
                RemoveSubscriptionLocked(subscription);
            }
        }

        DeadLetterAll(deadLetters, consumer.State);
        ReleaseAbandoned(abandoned);
    }

    public override bool DeleteSubscription(string name)
    {
        List<Message<T>>? abandoned = null;
        lock (_gate)
        {
            if (!_durable.TryGetValue(name, out SubscriptionState<T>? subscription))
            {
                return false;
            }

            subscription.Delete(ref abandoned);
            RemoveSubscriptionLocked(subscription);
        }

        ReleaseAbandoned(abandoned);
        return true;
    }

    /// <summary>
    /// Finishes what a subscription's own bound started while locks were held: releases and raises the
    /// messages it dropped, and cuts it loose if it asked for that. Called without any lock.
    /// </summary>
    internal void FinishPendingWork(SubscriptionState<T> subscription)
    {
        if (!subscription.HasPendingWork)
        {
            return;
        }

        (List<Consumer<T>.Unsettled>? dropped, bool cutLoose) = subscription.TakePendingWork();
        List<Consumer<T>>? closed = null;
        if (cutLoose)
        {
            long now = _time.GetTimestamp();
            lock (_gate)
            {
                closed = subscription.CutLoose(now, ref dropped);
                if (closed is not null)
                {
                    RemoveSubscriptionLocked(subscription);
                }
            }
        }

        List<MessageDroppedEventArgs>? events = null;
        foreach (Consumer<T>.Unsettled held in dropped ?? [])
        {
            Message<T> message = held.Message;
            (events ??= []).Add(new MessageDroppedEventArgs(Name, subscription.Name ?? string.Empty, message.Id, message.Sequence, message.Event, DropReason.SubscriptionOverflow));
            if (_deadLetterDrops)
            {
                DeadLetter(message, held.Deliveries, DeadLetterReasons.Overflow, null, subscription.Name, subscription.Key, held.History);
            }

            Release(message, subscription.Name);
        }

        if (closed is not null)
        {
            _events.CutLoose(Name, subscription.Name, closed.Count, dropped?.Count ?? 0);
        }

        foreach (Consumer<T> consumer in closed ?? [])
        {
            consumer.Finish(new SubscriptionClosedException(
                Name,
                subscription.Name,
                SubscriptionCloseReason.CutLoose,
                $"Subscription '{subscription.Name ?? "(ephemeral)"}' on queue '{Name}' fell further behind than its MaxBacklog and was cut loose (BacklogOverflowPolicy.Disconnect); the messages it held were dropped."));
        }

        _events.Dropped(events);
    }

    /// <summary>Releases messages whose subscription ended while it still held them. Called without any lock.</summary>
    internal void ReleaseAbandoned(List<Message<T>>? abandoned)
    {
        if (abandoned is null)
        {
            return;
        }

        Interlocked.Add(ref _abandoned, abandoned.Count);
        foreach (Message<T> message in abandoned)
        {
            Release(message);
        }
    }
}
