namespace MessageQueue;

/// <summary>
/// What a queue does with a publish that finds it full: the queue's <see cref="OverflowPolicy"/>, as one sealed
/// strategy chosen when the queue is declared (<see cref="WaitAdmission{T}"/>, <see cref="RejectAdmission{T}"/>,
/// <see cref="DropOldestAdmission{T}"/>). The fast path (room available, nobody waiting) never calls it.
/// </summary>
/// <remarks>
/// A new overflow policy is a new subclass here and a case in <see cref="Create"/>, plus its enum value and its
/// documentation in <see cref="OverflowPolicy"/>.
/// </remarks>
internal abstract class QueueAdmission<T>
{
    // Publishers waiting for room: only WaitAdmission changes it. A field of the base class, read without a virtual
    // call on every publish (a newcomer never overtakes a waiting publisher) and on every release of room.
    private protected int _waiting;

    private protected QueueAdmission(BrokerQueue<T> queue) => Queue = queue;

    /// <summary>The queue this admission serves.</summary>
    protected BrokerQueue<T> Queue { get; }

    /// <summary>The policy this strategy implements, for snapshots.</summary>
    public abstract OverflowPolicy Policy { get; }

    /// <summary>True while publishers wait for room. Read without a lock: a full fence orders it against the depth.</summary>
    public bool HasWaiters => Volatile.Read(ref _waiting) != 0;

    /// <summary>How many publishers wait for room, for snapshots.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Picks the strategy for a queue's options.</summary>
    public static QueueAdmission<T> Create(BrokerQueue<T> queue, OverflowPolicy policy, DepthGauge depth) => policy switch
    {
        OverflowPolicy.Reject => new RejectAdmission<T>(queue),
        OverflowPolicy.DropOldest => new DropOldestAdmission<T>(queue),
        _ => new WaitAdmission<T>(queue, depth),
    };

    /// <summary>
    /// The queue is full and the publish may not wait (or the policy never waits): make room now and report that the
    /// caller may admit the message over the bound's accounting (true), or refuse (false).
    /// </summary>
    public abstract bool TryMakeRoom(QueueRetention<T> retention);

    /// <summary>The queue is full and <see cref="TryMakeRoom"/> refused: wait for room and publish, or throw.</summary>
    /// <exception cref="QueueFullException">The policy refuses, or the wait ran out.</exception>
    public abstract ValueTask<PublishReceipt> WhenFullAsync(Draft<T> draft, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Room was freed while <see cref="HasWaiters"/>: hand it to waiting publishers.</summary>
    public virtual void GrantWaiters()
    {
    }

    /// <summary>The queue closed: publishers waiting for room fail with <see cref="ObjectDisposedException"/>, and later ones at once.</summary>
    public virtual void Close()
    {
    }
}
