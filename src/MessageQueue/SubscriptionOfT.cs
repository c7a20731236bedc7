using System.Runtime.CompilerServices;

namespace MessageQueue;

/// <summary>
/// An attached consumer that reads deliveries of type <typeparamref name="T"/>, in publish order.
/// Each delivery must be settled (<see cref="Delivery{T}.AckAsync"/>, <see cref="Delivery{T}.NackAsync(CancellationToken)"/> or
/// <see cref="Delivery{T}.RejectAsync"/>); at most <see cref="SubscriptionOptions.MaxInFlight"/>
/// deliveries are unsettled at a time.
/// </summary>
/// <remarks>
/// The read methods follow <see cref="System.Threading.Channels.ChannelReader{T}"/>: when the
/// subscription has ended, <see cref="ReadAllAsync"/> finishes, <see cref="WaitToReadAsync"/> returns
/// <see langword="false"/> and <see cref="ReadAsync"/> throws
/// <see cref="System.Threading.Channels.ChannelClosedException"/>.
/// </remarks>
/// <typeparam name="T">The payload type of the queue.</typeparam>
public abstract class Subscription<T> : Subscription
{
    /// <summary>Initializes a new instance. For implementers of transports.</summary>
    protected Subscription()
    {
    }

    /// <summary>Reads the next delivery, waiting until one is available.</summary>
    /// <param name="cancellationToken">A token that cancels the wait.</param>
    /// <returns>The next delivery.</returns>
    public abstract ValueTask<Delivery<T>> ReadAsync(CancellationToken cancellationToken = default);

    /// <summary>Reads the next delivery if one is available now.</summary>
    /// <param name="delivery">The delivery that was read.</param>
    /// <returns><see langword="true"/> when a delivery was read.</returns>
    public abstract bool TryRead(out Delivery<T> delivery);

    /// <summary>Waits until a delivery is available or the subscription has ended.</summary>
    /// <param name="cancellationToken">A token that cancels the wait.</param>
    /// <returns><see langword="true"/> when a delivery is available; <see langword="false"/> when the subscription has ended.</returns>
    public abstract ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default);

    /// <summary>Reads every delivery until the subscription ends.</summary>
    /// <param name="cancellationToken">A token that stops the enumeration.</param>
    /// <returns>The deliveries, in order.</returns>
    public virtual async IAsyncEnumerable<Delivery<T>> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (TryRead(out Delivery<T> delivery))
            {
                yield return delivery;
            }
        }
    }

    /// <summary>Implements <see cref="Delivery{T}.AckAsync"/> for deliveries this subscription created.</summary>
    /// <param name="token">The token the delivery was created with.</param>
    /// <param name="cancellationToken">A token that cancels the operation before it takes effect.</param>
    /// <returns><see langword="true"/> when the delivery was pending and is now settled.</returns>
    protected internal abstract ValueTask<bool> AckCoreAsync(long token, CancellationToken cancellationToken);

    /// <summary>Implements both <c>NackAsync</c> overloads of <see cref="Delivery{T}"/> for deliveries this subscription created.</summary>
    /// <param name="token">The token the delivery was created with.</param>
    /// <param name="delay">The delay the caller asked for, or <see langword="null"/> for the backoff schedule.</param>
    /// <param name="cancellationToken">A token that cancels the operation before it takes effect.</param>
    /// <returns><see langword="true"/> when the delivery was pending and is now settled.</returns>
    protected internal abstract ValueTask<bool> NackCoreAsync(long token, TimeSpan? delay, CancellationToken cancellationToken);

    /// <summary>Implements <see cref="Delivery{T}.ExtendAsync"/> for deliveries this subscription created.</summary>
    /// <param name="token">The token the delivery was created with.</param>
    /// <param name="cancellationToken">A token that cancels the operation before it takes effect.</param>
    /// <returns><see langword="true"/> when the delivery is still pending.</returns>
    protected internal abstract ValueTask<bool> ExtendCoreAsync(long token, CancellationToken cancellationToken);

    /// <summary>Implements <see cref="Delivery{T}.RejectAsync"/> for deliveries this subscription created.</summary>
    /// <param name="token">The token the delivery was created with.</param>
    /// <param name="reason">The reason given by the caller, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">A token that cancels the operation before it takes effect.</param>
    /// <returns><see langword="true"/> when the delivery was pending and is now settled.</returns>
    protected internal abstract ValueTask<bool> RejectCoreAsync(long token, string? reason, CancellationToken cancellationToken);
}
