using System.Collections.Frozen;
using System.Globalization;
using MessageQueue.DependencyInjection;

namespace MessageQueue.Testing;

/// <summary>How a <see cref="TestDelivery{T}"/> was settled.</summary>
public enum DeliveryOutcome
{
    /// <summary>Not settled (it may have been extended).</summary>
    Pending,

    /// <summary>Acked.</summary>
    Acked,

    /// <summary>Nacked: it would be delivered again, after <see cref="TestDelivery{T}.NackDelay"/> or the subscription's backoff.</summary>
    Nacked,

    /// <summary>Rejected: it would go to the dead-letter queue.</summary>
    Rejected,
}

/// <summary>
/// A <see cref="Delivery{T}"/> built by hand, for unit tests of a handler: pass <see cref="Delivery"/> (or the
/// <see cref="TestDelivery{T}"/> itself, which converts) to your handler, then assert how it settled it.
/// </summary>
/// <remarks>
/// It behaves as a broker's delivery does: the first settle wins and returns <see langword="true"/>; later ones return
/// <see langword="false"/> and change nothing (they are counted in <see cref="LateSettles"/>).
/// </remarks>
/// <example>
/// <code>
/// var delivery = new TestDelivery&lt;Order&gt;(new Order(7), "order.created", attempt: 3);
/// await handler.ProcessAsync(delivery.Delivery);
/// delivery.Outcome.Should().Be(DeliveryOutcome.Nacked);
/// delivery.NackDelay.Should().Be(TimeSpan.FromSeconds(30));
/// </code>
/// </example>
/// <typeparam name="T">The payload type.</typeparam>
public sealed class TestDelivery<T>
{
    private const long Token = 1;
    private readonly Lock _gate = new();
    private DeliveryOutcome _outcome;
    private TimeSpan? _nackDelay;
    private string? _rejectReason;
    private int _extensions;
    private int _lateSettles;

    /// <summary>Builds a delivery of <paramref name="payload"/>.</summary>
    /// <param name="payload">The payload.</param>
    /// <param name="eventName">The event name; checked as the broker checks it.</param>
    /// <param name="attempt">The attempt number, 1 or more.</param>
    /// <param name="headers">The message's headers; <see langword="null"/> for none.</param>
    /// <param name="maxDeliveries">The subscription's MaxDeliveries: the delivery's <see cref="Delivery{T}.IsLastAttempt"/> is <c>attempt &gt;= maxDeliveries</c>.</param>
    /// <param name="queue">The queue name; checked as the broker checks it.</param>
    /// <param name="timestamp">The message's publish time; <see langword="null"/> for <see cref="ManualTimeProvider.DefaultStart"/>.</param>
    /// <exception cref="ArgumentException">A name is invalid, or a number out of range; the message says which.</exception>
    public TestDelivery(
        T payload,
        string eventName = "test",
        int attempt = 1,
        IReadOnlyDictionary<string, string>? headers = null,
        int maxDeliveries = 10,
        string queue = "test",
        DateTimeOffset? timestamp = null)
    {
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
        Names.ValidateEvent(eventName, nameof(eventName));
        if (attempt < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(attempt), attempt, "A delivery's attempt number starts at 1.");
        }

        if (maxDeliveries < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxDeliveries), maxDeliveries, "MaxDeliveries is at least 1.");
        }

        long sequence = 1;
        DateTimeOffset time = (timestamp ?? ManualTimeProvider.DefaultStart).ToUniversalTime();
        IReadOnlyDictionary<string, string> frozen = headers is null
            ? FrozenDictionary<string, string>.Empty
            : headers.ToFrozenDictionary(StringComparer.Ordinal);
        Message = new Message<T>(Guid.NewGuid(), queue, eventName, payload, sequence, time.UtcTicks, frozen);
        Delivery = new Delivery<T>(Message, attempt, attempt >= maxDeliveries, new Owner(this), Token);
    }

    /// <summary>Gets the delivery to pass to the code under test.</summary>
    public Delivery<T> Delivery { get; }

    /// <summary>Gets the delivered message.</summary>
    public Message<T> Message { get; }

    /// <summary>Gets how the delivery was settled, or <see cref="DeliveryOutcome.Pending"/>.</summary>
    public DeliveryOutcome Outcome
    {
        get
        {
            lock (_gate)
            {
                return _outcome;
            }
        }
    }

    /// <summary>Gets whether the delivery was settled (acked, nacked or rejected).</summary>
    public bool IsSettled => Outcome != DeliveryOutcome.Pending;

    /// <summary>
    /// Gets the delay a nack asked for; <see langword="null"/> when it was not nacked, or was nacked without a delay (the
    /// subscription's backoff schedule then decides).
    /// </summary>
    public TimeSpan? NackDelay
    {
        get
        {
            lock (_gate)
            {
                return _nackDelay;
            }
        }
    }

    /// <summary>Gets the reason a reject gave; <see langword="null"/> when it was not rejected or gave none.</summary>
    public string? RejectReason
    {
        get
        {
            lock (_gate)
            {
                return _rejectReason;
            }
        }
    }

    /// <summary>Gets how many times the ack deadline was extended before the delivery was settled.</summary>
    public int Extensions
    {
        get
        {
            lock (_gate)
            {
                return _extensions;
            }
        }
    }

    /// <summary>Gets how many settles or extends came after the delivery was settled (each returned <see langword="false"/>).</summary>
    public int LateSettles
    {
        get
        {
            lock (_gate)
            {
                return _lateSettles;
            }
        }
    }

    /// <summary>Converts to the <see cref="Delivery{T}"/> to pass to the code under test.</summary>
    /// <param name="delivery">The test delivery.</param>
    public static implicit operator Delivery<T>(TestDelivery<T> delivery)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        return delivery.Delivery;
    }

    /// <summary>Gets the <see cref="Delivery{T}"/> to pass to the code under test.</summary>
    /// <returns>The delivery.</returns>
    public Delivery<T> ToDelivery() => Delivery;

    /// <summary>
    /// Runs a hosted handler on this delivery as the host does: returning acks (unless the handler settled the delivery
    /// itself), and throwing nacks on the subscription's backoff schedule. The handler's exception is not rethrown; it is
    /// returned in the outcome's place, in <see cref="HandlerException"/>.
    /// </summary>
    /// <param name="handler">The handler under test.</param>
    /// <param name="cancellationToken">The token passed to the handler.</param>
    /// <returns>How the delivery was settled.</returns>
    public async Task<DeliveryOutcome> HandleWithAsync(IMessageHandler<T> handler, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        try
        {
            await handler.HandleAsync(Delivery, cancellationToken).ConfigureAwait(false);
            if (!IsSettled)
            {
                await Delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // The host treats any exception as a failure of the message; so does this.
        catch (Exception error)
#pragma warning restore CA1031
        {
            HandlerException = error;
            if (!IsSettled)
            {
                await Delivery.NackAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }

        return Outcome;
    }

    /// <summary>Gets the exception the handler threw in <see cref="HandleWithAsync"/>, or <see langword="null"/>.</summary>
    public Exception? HandlerException { get; private set; }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"TestDelivery {Message} attempt {Delivery.Attempt}: {Outcome}");

    private bool Settle(DeliveryOutcome outcome, TimeSpan? delay, string? reason)
    {
        lock (_gate)
        {
            if (_outcome != DeliveryOutcome.Pending)
            {
                _lateSettles++;
                return false;
            }

            _outcome = outcome;
            _nackDelay = delay;
            _rejectReason = reason;
            return true;
        }
    }

    private bool Extend()
    {
        lock (_gate)
        {
            if (_outcome != DeliveryOutcome.Pending)
            {
                _lateSettles++;
                return false;
            }

            _extensions++;
            return true;
        }
    }

    /// <summary>The subscription a test delivery settles through: it records, and cannot be read.</summary>
    private sealed class Owner(TestDelivery<T> delivery) : Subscription<T>
    {
        public override string Queue => delivery.Message.Queue;

        public override string? Name => null;

        public override IReadOnlyList<string> Filters => ["#"];

        public override Task Completion => Task.CompletedTask;

        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;

        public override ValueTask<Delivery<T>> ReadAsync(CancellationToken cancellationToken = default) => throw NotReadable();

        public override bool TryRead(out Delivery<T> delivery) => throw NotReadable();

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => throw NotReadable();

        protected internal override ValueTask<bool> AckCoreAsync(long token, CancellationToken cancellationToken) =>
            cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<bool>(cancellationToken) : new ValueTask<bool>(delivery.Settle(DeliveryOutcome.Acked, null, null));

        protected internal override ValueTask<bool> NackCoreAsync(long token, TimeSpan? delay, CancellationToken cancellationToken) =>
            cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<bool>(cancellationToken) : new ValueTask<bool>(delivery.Settle(DeliveryOutcome.Nacked, delay, null));

        protected internal override ValueTask<bool> RejectCoreAsync(long token, string? reason, CancellationToken cancellationToken) =>
            cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<bool>(cancellationToken) : new ValueTask<bool>(delivery.Settle(DeliveryOutcome.Rejected, null, reason));

        protected internal override ValueTask<bool> ExtendCoreAsync(long token, CancellationToken cancellationToken) =>
            cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<bool>(cancellationToken) : new ValueTask<bool>(delivery.Extend());

        private static NotSupportedException NotReadable() =>
            new("A TestDelivery's subscription only records how the delivery is settled; it has nothing to read. Pass TestDelivery.Delivery to the code under test instead.");
    }
}
