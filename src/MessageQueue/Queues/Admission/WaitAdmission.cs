using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// <see cref="OverflowPolicy.Wait"/>: a publish into a full queue waits for room in a line, served in arrival order,
/// up to its timeout and for as long as its cancellation token allows.
/// </summary>
/// <remarks>
/// <para><b>Room is reserved, then handed over.</b> A freed unit of room is taken from the depth gauge first and then
/// given to the first waiter, so a publisher on the fast path can never slip in between and push the depth past the
/// bound. Waiters leave the line only under <see cref="_gate"/> (granted, abandoned, or failed on close), so every
/// waiter still in the line can be granted.</para>
/// <para><b>No lost wake-up.</b> A waiter joins the line, increments the waiting count (a full fence), then looks at the
/// depth again; a consumer frees room and then reads the waiting count. One of the two sees the other.</para>
/// </remarks>
internal sealed class WaitAdmission<T> : QueueAdmission<T>
{
    private readonly DepthGauge _depth;

    // Taken alone or last (after the queue's own locks), never while calling out.
    private readonly Lock _gate = new();
    private readonly LinkedList<PublishWaiter> _line = new();
    private bool _closed;

    public WaitAdmission(BrokerQueue<T> queue, DepthGauge depth)
        : base(queue) => _depth = depth;

    public override OverflowPolicy Policy => OverflowPolicy.Wait;

    public override bool TryMakeRoom(QueueRetention<T> retention) => false;

    public override ValueTask<PublishReceipt> WhenFullAsync(Draft<T> draft, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // A handler of this queue's own subscription must not wait for room here: the handler would hold
        // its delivery, and with it part of the room it waits for, possibly all of it.
        if (HandlerScope.Current?.Consumer?.OwnerQueue == Queue)
        {
            throw new QueueFullException(
                Queue.Name,
                $"Queue '{Queue.Name}' is full (MaxMessages = {Queue.Options.MaxMessages}), and this publish comes from a handler of one of its own subscriptions. " +
                "Waiting for room would hold that handler's delivery, and room may only come from it, so the broker refuses instead of waiting. " +
                "Publish into another queue, settle the delivery before publishing, raise MaxMessages, or declare the queue with OverflowPolicy.Reject or DropOldest.",
                null);
        }

        return WaitForRoomAsync(draft, timeout, cancellationToken);
    }

    private async ValueTask<PublishReceipt> WaitForRoomAsync(Draft<T> draft, TimeSpan timeout, CancellationToken cancellationToken)
    {
        PublishWaiter waiter = Enqueue();
        try
        {
            await waiter.Task.WaitAsync(timeout, Queue.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception error) when (error is OperationCanceledException or TimeoutException)
        {
            if (TryAbandon(waiter))
            {
                // Gave up before any room was granted: nothing was reserved, nothing was published.
                if (error is TimeoutException)
                {
                    throw Queue.Full(timeout);
                }

                throw;
            }

            if (!waiter.Task.IsCompletedSuccessfully)
            {
                // The queue closed first and failed the waiter; nothing was reserved.
                throw Queue.CreateDisposedException();
            }

            // Room was granted in the same instant. On a timeout, keep it and publish; on
            // cancellation, pass it on, because a cancelled call must change nothing.
            if (error is OperationCanceledException)
            {
                Queue.ReturnRoom();
                throw;
            }
        }

        // One unit of room is ours.
        return await Queue.PublishWithRoomAsync(draft).ConfigureAwait(false);
    }

    private PublishWaiter Enqueue()
    {
        var waiter = new PublishWaiter();
        lock (_gate)
        {
            if (_closed)
            {
                waiter.TrySetException(Queue.CreateDisposedException());
                return waiter;
            }

            waiter.Node = _line.AddLast(waiter);

            // Full fence, then look at the depth again: a consumer that freed room just now may have
            // read the waiting count before this increment. One of the two sees the other.
            Interlocked.Increment(ref _waiting);
            GrantWaitersLocked();
        }

        return waiter;
    }

    /// <summary>
    /// A waiter gives up (timeout or cancellation). It leaves the line at once, so abandoned waiters
    /// never pile up while the queue stays full. False when room was granted (or the queue closed) first.
    /// </summary>
    private bool TryAbandon(PublishWaiter waiter)
    {
        lock (_gate)
        {
            if (!waiter.TryAbandon())
            {
                return false;
            }

            if (waiter.Node?.List is not null)
            {
                _line.Remove(waiter.Node);
                Interlocked.Decrement(ref _waiting);
            }

            return true;
        }
    }

    public override void GrantWaiters()
    {
        lock (_gate)
        {
            GrantWaitersLocked();
        }
    }

    /// <summary>Gives room to waiting publishers in arrival order: reserved from the gauge first, then handed over.</summary>
    private void GrantWaitersLocked()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        while (_line.First is { } first && _depth.TryAdmit())
        {
            _line.RemoveFirst();
            Interlocked.Decrement(ref _waiting);
            bool granted = first.Value.TryGrant();
            Debug.Assert(granted, "a waiter that completed left the line under the same lock");
        }
    }

    public override void Close()
    {
        lock (_gate)
        {
            _closed = true;
            foreach (PublishWaiter waiter in _line)
            {
                waiter.TrySetException(Queue.CreateDisposedException());
            }

            _line.Clear();
            Volatile.Write(ref _waiting, 0);
        }
    }
}
