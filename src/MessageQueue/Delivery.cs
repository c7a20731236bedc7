using System.Runtime.InteropServices;

namespace MessageQueue;

/// <summary>
/// One delivery of a message to one consumer: the message, which attempt this is, and the
/// operations that settle it. A delivery is a small struct; reading and settling it allocates nothing.
/// </summary>
/// <remarks>
/// <para>Settle each delivery exactly once, with <see cref="AckAsync"/>, <see cref="NackAsync(CancellationToken)"/> or
/// <see cref="RejectAsync"/>. The settle methods return <see langword="false"/>, and change nothing,
/// when the delivery is no longer pending: it was already settled, or its subscription was disposed
/// and the message went back to be delivered again. That makes a double ack harmless, and a late ack
/// after a disconnect tells you that the message will come again.</para>
/// <para>A default-constructed <see cref="Delivery{T}"/> has no message; its settle methods throw
/// <see cref="InvalidOperationException"/>.</para>
/// </remarks>
/// <typeparam name="T">The payload type.</typeparam>
[StructLayout(LayoutKind.Auto)]
public readonly struct Delivery<T>
{
    private readonly Subscription<T>? _owner;
    private readonly long _token;
    private readonly bool _isLastAttempt;

    /// <summary>
    /// Creates a delivery. This is for implementers of <see cref="Subscription{T}"/>: the settle
    /// methods call back into <paramref name="owner"/> with <paramref name="token"/>.
    /// </summary>
    /// <param name="message">The message being delivered.</param>
    /// <param name="attempt">The attempt number, starting at 1.</param>
    /// <param name="isLastAttempt">Whether a failure of this delivery dead-letters the message.</param>
    /// <param name="owner">The subscription that settles this delivery.</param>
    /// <param name="token">An opaque value that identifies this delivery to <paramref name="owner"/>.</param>
    public Delivery(Message<T> message, int attempt, bool isLastAttempt, Subscription<T> owner, long token)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        Message = message;
        Attempt = attempt;
        _isLastAttempt = isLastAttempt;
        _owner = owner;
        _token = token;
    }

    /// <summary>The broker's own constructor: its arguments are valid by construction, so it skips the checks.</summary>
#pragma warning disable IDE0060 // 'trusted' only selects this overload
    internal Delivery(Message<T> message, int attempt, bool isLastAttempt, Subscription<T> owner, long token, bool trusted)
#pragma warning restore IDE0060
    {
        Message = message;
        Attempt = attempt;
        _isLastAttempt = isLastAttempt;
        _owner = owner;
        _token = token;
    }

    /// <summary>Gets the delivered message.</summary>
    public Message<T> Message { get; }

    /// <summary>Gets the attempt number: 1 for the first delivery, increased by one on each redelivery.</summary>
    public int Attempt { get; }

    /// <summary>
    /// Gets whether this is the final attempt: if this delivery is nacked or times out, the message goes to
    /// the dead-letter queue instead of coming back (see <see cref="SubscriptionOptions.MaxDeliveries"/>).
    /// </summary>
    public bool IsLastAttempt => _isLastAttempt;

    /// <summary>Gets the payload of <see cref="Message"/>.</summary>
    public T Payload => Message.Payload;

    /// <summary>Gets the event name of <see cref="Message"/>.</summary>
    public string Event => Message.Event;

    /// <summary>
    /// Acknowledges the delivery: the message is done for this subscription and will not come again.
    /// </summary>
    /// <param name="cancellationToken">A token that cancels the operation before it takes effect.</param>
    /// <returns><see langword="true"/> when this call settled the delivery; <see langword="false"/> when it
    /// was no longer pending (already settled, or returned for redelivery).</returns>
    public ValueTask<bool> AckAsync(CancellationToken cancellationToken = default) =>
        Owner.AckCoreAsync(_token, cancellationToken);

    /// <summary>
    /// Negatively acknowledges the delivery: the message goes back to its subscription and is delivered
    /// again after the subscription's backoff delay for this attempt (<see cref="SubscriptionOptions.RedeliveryDelays"/>),
    /// with <see cref="Attempt"/> increased. On the last attempt it goes to the dead-letter queue instead.
    /// </summary>
    /// <remarks>
    /// While it waits, the message keeps its place: it still counts against the consumer's
    /// <see cref="SubscriptionOptions.MaxInFlight"/>, and it comes back ahead of everything still waiting in
    /// the subscription. With <see cref="SubscriptionOptions.MaxInFlight"/> 1 the order is strict: nothing
    /// newer is delivered before it. Deliveries already handed to the consumer are not held back.
    /// </remarks>
    /// <param name="cancellationToken">A token that cancels the operation before it takes effect.</param>
    /// <returns><see langword="true"/> when this call settled the delivery; <see langword="false"/> when it
    /// was no longer pending.</returns>
    public ValueTask<bool> NackAsync(CancellationToken cancellationToken = default) =>
        Owner.NackCoreAsync(_token, null, cancellationToken);

    /// <summary>
    /// Negatively acknowledges the delivery and has it delivered again after <paramref name="delay"/>
    /// (<see cref="TimeSpan.Zero"/> for at once) instead of the subscription's backoff delay. See
    /// <see cref="NackAsync(CancellationToken)"/>.
    /// </summary>
    /// <param name="delay">How long to wait before delivering it again. Zero or positive, at most about 24.8 days.</param>
    /// <param name="cancellationToken">A token that cancels the operation before it takes effect.</param>
    /// <returns><see langword="true"/> when this call settled the delivery; <see langword="false"/> when it
    /// was no longer pending.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative, infinite or too long.</exception>
    public ValueTask<bool> NackAsync(TimeSpan delay, CancellationToken cancellationToken = default)
    {
        string? error = delay == Timeout.InfiniteTimeSpan
            ? "The delay is infinite; a nacked message must come back. Use a finite delay."
            : Timeouts.Describe(delay, nameof(delay), allowZero: true);
        if (error is not null)
        {
            throw new ArgumentOutOfRangeException(nameof(delay), delay, error);
        }

        return Owner.NackCoreAsync(_token, delay, cancellationToken);
    }

    /// <summary>
    /// Tells the broker the consumer is still working on this delivery: its ack deadline
    /// (<see cref="SubscriptionOptions.AckTimeout"/>) starts again from now. Without a deadline this only
    /// checks that the delivery is still pending.
    /// </summary>
    /// <param name="cancellationToken">A token that cancels the operation before it takes effect.</param>
    /// <returns><see langword="true"/> when the delivery is still pending; <see langword="false"/> when it was
    /// already settled or went back to be delivered again (too late to extend).</returns>
    public ValueTask<bool> ExtendAsync(CancellationToken cancellationToken = default) =>
        Owner.ExtendCoreAsync(_token, cancellationToken);

    /// <summary>
    /// Rejects the delivery: the message leaves the subscription at once and goes to the queue's
    /// dead-letter queue (see <see cref="Broker.GetDeadLetterQueueName"/>), carrying
    /// <paramref name="reason"/> in its headers.
    /// </summary>
    /// <param name="reason">Why the message was rejected, for whoever reads the dead letter. Optional.</param>
    /// <param name="cancellationToken">A token that cancels the operation before it takes effect.</param>
    /// <returns><see langword="true"/> when this call settled the delivery; <see langword="false"/> when it
    /// was no longer pending.</returns>
    public ValueTask<bool> RejectAsync(string? reason = null, CancellationToken cancellationToken = default) =>
        Owner.RejectCoreAsync(_token, reason, cancellationToken);

    internal long Token => _token;

    /// <summary>The durable name of the subscription the delivery came from, or null (ephemeral, or a default value).</summary>
    internal string? SubscriptionName => _owner?.Name;

    /// <inheritdoc/>
    public override string ToString() => _owner is null ? "(no delivery)" : $"{Message} attempt {Attempt}";

    private Subscription<T> Owner => _owner ?? throw new InvalidOperationException(
        "This Delivery<T> is a default value and holds no message. Use deliveries read from a subscription.");
}
