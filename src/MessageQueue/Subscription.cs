namespace MessageQueue;

/// <summary>
/// The lifetime of one attached consumer: which queue and filters it reads, and when it ended.
/// Dispose it to detach. Reading is on <see cref="Subscription{T}"/>.
/// </summary>
/// <remarks>
/// A subscription with a <see cref="SubscriptionOptions.Name"/> is durable: disposing the consumer
/// detaches it, the subscription lives on and keeps collecting messages, and the next consumer that
/// subscribes with the same name catches up. Without a name the subscription is ephemeral and ends
/// with its consumer.
/// </remarks>
public abstract class Subscription : IAsyncDisposable
{
    /// <summary>Initializes a new instance. For implementers of transports.</summary>
    protected Subscription()
    {
    }

    /// <summary>Gets the name of the queue this subscription reads.</summary>
    public abstract string Queue { get; }

    /// <summary>Gets the name of a durable subscription, or <see langword="null"/> for an ephemeral one.</summary>
    public abstract string? Name { get; }

    /// <summary>Gets the event filters, as given when subscribing.</summary>
    public abstract IReadOnlyList<string> Filters { get; }

    /// <summary>
    /// Gets a task that completes when the consumer is detached. It completes successfully when the
    /// owner detached it (by disposing the subscription or its client), and otherwise faults with a
    /// <see cref="SubscriptionClosedException"/> whose <see cref="SubscriptionClosedException.Reason"/> says why:
    /// the broker was disposed, another consumer took over, or the subscription was cut loose.
    /// </summary>
    public abstract Task Completion { get; }

    /// <summary>
    /// Detaches the consumer. Messages it had in flight and not settled go back to a durable
    /// subscription, to be delivered again; settling them afterwards returns <see langword="false"/>.
    /// <see cref="Completion"/> completes successfully, and reads end as on a completed
    /// <see cref="System.Threading.Channels.ChannelReader{T}"/>: <see cref="Subscription{T}.TryRead"/> and
    /// <see cref="Subscription{T}.WaitToReadAsync"/> return <see langword="false"/>, <see cref="Subscription{T}.ReadAllAsync"/>
    /// finishes, and <see cref="Subscription{T}.ReadAsync"/> throws <see cref="System.Threading.Channels.ChannelClosedException"/>,
    /// also for a read that was waiting. Calling this more than once does nothing.
    /// </summary>
    /// <returns>A task that completes when the consumer is detached.</returns>
    public abstract ValueTask DisposeAsync();
}
