using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// <see cref="RetentionPolicy.Interest"/>: a routed message counts towards the queue's depth from its publish until
/// every subscription it was routed to has let go of it. A message that routes nowhere is not kept at all.
/// </summary>
/// <remarks>
/// The depth is a <see cref="DepthGauge"/>: publishers reserve room with a compare-and-swap, and the last subscription
/// to let go of a message gives it back. No lock is shared by publishers and consumers.
/// </remarks>
internal sealed class InterestRetention<T> : QueueRetention<T>
{
    private readonly DepthGauge _depth;

    public InterestRetention(BrokerQueue<T> queue, QueueAdmission<T> admission, DepthGauge depth)
        : base(queue, admission) => _depth = depth;

    public override RetentionPolicy Policy => RetentionPolicy.Interest;

    public override int Depth => _depth.Depth;

    public override bool TryPublishNow(in Draft<T> draft, out PublishReceipt receipt, out long ticket)
    {
        ticket = 0;

        // A held message is routed when it enters the queue; now only its name is checked.
        Route<T>? route = null;
        if (draft.DueAt == 0)
        {
            route = draft.Target is { IsDeleted: false } target ? Queue.Routes.To(target) : Queue.Routes.Get(draft.Event);
            if (route.Subscriptions.Length == 0)
            {
                receipt = Queue.PublishUnrouted(draft, out ticket);
                return true;
            }
        }
        else
        {
            Queue.Routes.ValidateEvent(draft.Event);
        }

        // Waiting publishers go first, so a newcomer never overtakes them.
        if ((!Admission.HasWaiters && _depth.TryAdmit()) || Admission.TryMakeRoom(this))
        {
            receipt = Queue.Admitted(route, draft, out ticket);
            return true;
        }

        receipt = default;
        return false;
    }

    public override void ReleaseHeld(in Draft<T> draft)
    {
        // It holds a unit of depth from its publish. Routed now: subscriptions made while it waited
        // receive it. An expired one is routed too, and expires where it would be read.
        Route<T> route = Queue.Routes.Get(draft.Event);
        if (route.Subscriptions.Length == 0)
        {
            Queue.StoreUnscheduled(draft.Id);
            ReturnRoom();
            Queue.PublishUnrouted(draft, out _);
        }
        else
        {
            Queue.Deliver(route, draft, out _);
        }
    }

    public override bool LastReleased()
    {
        ReturnRoom();
        return true;
    }

    /// <summary>Frees one unit of depth and wakes a waiting publisher if there is one. Called with no lock held, or with only the queue's lock.</summary>
    public override void ReturnRoom()
    {
        _depth.Release();
        if (Admission.HasWaiters)
        {
            Admission.GrantWaiters();
        }
    }

    public override void ForceRoom() => _depth.ForceAdmit();

    /// <summary>
    /// Takes one unit of depth, evicting the oldest messages that wait in any backlog to make room. If nothing waits in
    /// any backlog, every kept message is in flight, and the new one is admitted over the bound (documented on
    /// <see cref="OverflowPolicy.DropOldest"/>).
    /// </summary>
    public override void MakeRoomByEvicting()
    {
        List<MessageDroppedEventArgs>? dropped = null;
        List<OverflowDeadLetter<T>>? deadLetters = Queue.StartOverflowDeadLetters();
        lock (Queue.Gate)
        {
            // Evict until there is room: a concurrent publisher may take the room an eviction frees.
            while (!_depth.TryAdmit())
            {
                if (!EvictOldestWaitingLocked(ref dropped, deadLetters))
                {
                    _depth.ForceAdmit();
                    break;
                }
            }
        }

        Queue.DeadLetterOverflow(deadLetters);
        Queue.Events.Dropped(dropped);
    }

    /// <summary>
    /// Removes the oldest message that waits in any backlog from every backlog that holds it, and stops counting it
    /// towards the depth. Copies in flight with consumers are left alone and settle normally.
    /// </summary>
    /// <returns>False when no backlog held anything to drop.</returns>
    private bool EvictOldestWaitingLocked(ref List<MessageDroppedEventArgs>? dropped, List<OverflowDeadLetter<T>>? deadLetters)
    {
        Debug.Assert(Queue.Gate.IsHeldByCurrentThread);
        Message<T>? oldest = null;
        foreach (SubscriptionState<T> subscription in Queue.Routes.Subscriptions)
        {
            Message<T>? head = subscription.PeekOldestWaiting();
            if (head is not null && (oldest is null || head.Sequence < oldest.Sequence))
            {
                oldest = head;
            }
        }

        if (oldest is null)
        {
            return false;
        }

        // Nothing waits that is older than the oldest head, so each backlog drops at most this message.
        if (Queue.DropWaitingUpToLocked(oldest.Sequence, DropReason.QueueOverflow, ref dropped, deadLetters))
        {
            // Each release above freed the depth if it let go of the last reference. If consumers
            // still hold the message in flight, Evict stops it counting now instead. Exactly one of the
            // two frees the depth, and neither does if an earlier eviction already stopped it counting.
            if (oldest.Evict())
            {
                ReturnRoom();
            }

            Queue.CountDropped();
        }

        // A consumer may have taken it between the look and the drop; the caller looks again.
        return true;
    }

    public override void ValidateStart(StartPosition start, string paramName)
    {
        if (!start.IsNew)
        {
            throw new ArgumentException(
                $"Queue '{Queue.Name}' keeps messages only for the subscriptions that existed when they were published (Interest retention), so a new subscription can only start at new messages, not at {start}. " +
                "Declare the queue with QueueOptions.Retention = RetentionPolicy.Limits to let later subscriptions start from retained messages.",
                paramName);
        }
    }

    public override long StartLocked(SubscriptionState<T> subscription, StartPosition start)
    {
        Debug.Assert(Queue.Gate.IsHeldByCurrentThread, "called with its lock held");
        Debug.Assert(start.IsNew, "ValidateStart refused every other start");
        return Queue.LastSequence;
    }

    public override bool Recover(Message<T> message, int holders)
    {
        if (holders == 0)
        {
            // Settled everywhere, or its subscription is gone: the queue keeps it no longer.
            return false;
        }

        _depth.ForceAdmit();
        return true;
    }
}
