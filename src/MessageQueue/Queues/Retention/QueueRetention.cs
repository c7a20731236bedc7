namespace MessageQueue;

/// <summary>
/// How a queue keeps its messages and counts them against <see cref="QueueOptions.MaxMessages"/>: the queue's
/// <see cref="RetentionPolicy"/>, as one sealed strategy chosen when the queue is declared
/// (<see cref="InterestRetention{T}"/>, <see cref="LimitsRetention{T}"/>).
/// </summary>
/// <remarks>
/// A new retention mode is a new subclass here and a case in <see cref="Create"/>, plus its enum value and
/// documentation in <see cref="RetentionPolicy"/> and its checks in <see cref="QueueOptions"/>.
/// </remarks>
internal abstract class QueueRetention<T>
{
    private protected QueueRetention(BrokerQueue<T> queue, QueueAdmission<T> admission)
    {
        Queue = queue;
        Admission = admission;
    }

    /// <summary>Picks the strategy for a queue's options.</summary>
    public static QueueRetention<T> Create(BrokerQueue<T> queue, QueueOptions options, QueueAdmission<T> admission, DepthGauge depth) => options.Retention switch
    {
        RetentionPolicy.Limits => new LimitsRetention<T>(queue, admission, options.MaxMessages, options.MaxAge),
        _ => new InterestRetention<T>(queue, admission, depth),
    };

    /// <summary>The queue this retention serves.</summary>
    protected BrokerQueue<T> Queue { get; }

    /// <summary>What the queue does when it is full.</summary>
    protected QueueAdmission<T> Admission { get; }

    /// <summary>The policy this strategy implements, for snapshots.</summary>
    public abstract RetentionPolicy Policy { get; }

    /// <summary>The messages the queue counts against its bound now.</summary>
    public abstract int Depth { get; }

    /// <summary>
    /// Publishes if that needs no waiting: the event routes nowhere, the queue has room (and nobody waits ahead), or the
    /// admission makes room. False when the queue is full and the admission refuses; nothing was published.
    /// </summary>
    /// <param name="draft">The message.</param>
    /// <param name="receipt">Its receipt.</param>
    /// <param name="ticket">For a durable queue, the store ticket to wait for before the publish completes; 0 otherwise.</param>
    public abstract bool TryPublishNow(in Draft<T> draft, out PublishReceipt receipt, out long ticket);

    /// <summary>A message held for delayed delivery is due: it enters the queue, or is dropped (counted) when it cannot.</summary>
    public abstract void ReleaseHeld(in Draft<T> draft);

    /// <summary>
    /// A subscription let go of the last reference to a message. Returns whether the message left the queue for good
    /// (so a store forgets it), in which case its room is given back.
    /// </summary>
    public abstract bool LastReleased();

    /// <summary>One unit of room reserved for a message comes back unused (the publish failed, or the queue closed).</summary>
    public abstract void ReturnRoom();

    /// <summary>Reserves one unit of room without asking: a message that is already in the queue's keeping (recovery).</summary>
    public abstract void ForceRoom();

    /// <summary>The queue is full and its policy is DropOldest: make room by evicting the oldest message, by this retention's rule.</summary>
    public abstract void MakeRoomByEvicting();

    /// <summary>Checks that a new subscription can start at <paramref name="start"/>, before it is created.</summary>
    /// <exception cref="ArgumentException">The retention keeps nothing to start from.</exception>
    public abstract void ValidateStart(StartPosition start, string paramName);

    /// <summary>
    /// A new subscription's start: the sequence it starts after, having been handed the retained messages from
    /// <paramref name="start"/> on. Under the queue's locks, before the subscription is visible to publishers.
    /// </summary>
    public abstract long StartLocked(SubscriptionState<T> subscription, StartPosition start);

    /// <summary>
    /// Recovery: a stored message comes back, held by <paramref name="holders"/> durable subscriptions. Returns false when
    /// the queue no longer keeps it (the store may forget it).
    /// </summary>
    public abstract bool Recover(Message<T> message, int holders);

    /// <summary>Recovery is done: start whatever timers the recovered messages need.</summary>
    public virtual void Recovered()
    {
    }
}
