using System.Collections.Concurrent;
using System.Threading.Channels;
using RabbitMQ.Client;

namespace MessageQueue.RabbitMQ;

/// <summary>
/// One consumer on RabbitMQ: a channel of its own with a prefetch of <see cref="SubscriptionOptions.MaxInFlight"/>,
/// consuming from the subscription's RabbitMQ queue into a local buffer that the prefetch bounds.
/// </summary>
internal sealed partial class RabbitMqSubscription<T> : Subscription<T>, IResumable
{
    /// <summary>
    /// The longest nack delay: the consumer holds a delayed delivery unacked, and RabbitMQ closes a channel that holds
    /// one past its consumer timeout (30 minutes by default).
    /// </summary>
    public static readonly TimeSpan MaxNackDelay = TimeSpan.FromMinutes(15);

    private const int TagBits = 40;
    private const ulong TagMask = (1UL << TagBits) - 1;

    private readonly RabbitMqTransport _owner;
    private readonly SubscriptionOptions _options;
    private readonly bool _durable;
    private readonly Channel<Incoming> _incoming;
    private readonly ConcurrentDictionary<long, Pending> _pending = new();
    private readonly ConcurrentDictionary<long, ITimer> _parked = new();

    // The channel deliveries come from now. A durable subscription gets a new one, with the next generation, when
    // the transport reconnects; a token names its generation, so a settle of a delivery from a lost channel is
    // stale (it returns false: RabbitMQ delivers the message again).
    private volatile Lease _lease;

    // Ephemeral queues are exclusive to this consumer, so it counts returns itself; quorum queues count them
    // in x-delivery-count.
    private readonly ConcurrentDictionary<Guid, int> _returns = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _closing;

    // Acks and nacks on their way to the channel. Closing waits for them: a frame sent after the channel's close
    // is a protocol error for which RabbitMQ closes the whole connection.
    private int _sending;
    private TaskCompletionSource? _sendsDone;

    private RabbitMqSubscription(RabbitMqTransport owner, Lease lease, string queue, string[] filters, SubscriptionOptions options)
    {
        _owner = owner;
        _lease = lease;
        _options = options;
        _durable = options.Name is not null;
        Queue = queue;
        Filters = filters;
        _incoming = Channel.CreateBounded<Incoming>(new BoundedChannelOptions(Math.Max(1, options.MaxInFlight))
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public RabbitMqTransport Owner => _owner;

    public override string Queue { get; }

    public override string? Name => _options.Name;

    public override IReadOnlyList<string> Filters { get; }

    public override Task Completion => _completion.Task;

    /// <summary>What the in-memory broker offers and RabbitMQ cannot: refused up front, with what to do instead.</summary>
    public static void Validate(SubscriptionOptions options)
    {
        options.Validate();
        if (options.AckTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new NotSupportedException("SubscriptionOptions.AckTimeout is not available on RabbitMQ (its consumer timeout is a server setting that closes the channel); leave it off (Timeout.InfiniteTimeSpan) and use a handler timeout.");
        }

        if (!options.StartAt.IsNew)
        {
            throw new NotSupportedException("SubscriptionOptions.StartAt needs a log that RabbitMQ queues do not keep; subscriptions on RabbitMQ start at new messages.");
        }

        if (options.MaxBacklog != 0)
        {
            throw new NotSupportedException("SubscriptionOptions.MaxBacklog is not available on RabbitMQ yet; bound the queue on the server with a policy (x-max-length) instead.");
        }

        if (options.Exclusive == ExclusiveMode.TakeOver)
        {
            throw new NotSupportedException("ExclusiveMode.TakeOver is not available on RabbitMQ: a consumer cannot cancel another's. Use ExclusiveMode.Standby (single active consumer) or Reject.");
        }

        foreach (TimeSpan delay in options.RedeliveryDelays)
        {
            if (delay > MaxNackDelay)
            {
                throw new NotSupportedException(
                    $"SubscriptionOptions.RedeliveryDelays holds {delay}; on RabbitMQ a nack delay may be at most {MaxNackDelay}, because the consumer holds the delivery unacked meanwhile and RabbitMQ closes a channel that holds one past its consumer timeout.");
            }
        }
    }

    public bool IsDurable => _durable;

    public static async Task<RabbitMqSubscription<T>> StartAsync(RabbitMqTransport owner, IConnection connection, int generation, string queue, string[] filters, SubscriptionOptions options, CancellationToken cancellationToken)
    {
        IChannel channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var subscription = new RabbitMqSubscription<T>(owner, new Lease(channel, generation), queue, filters, options);
        try
        {
            await subscription.ConsumeAsync(subscription._lease, cancellationToken).ConfigureAwait(false);
            return subscription;
        }
        catch
        {
            await CloseChannelAsync(channel).ConfigureAwait(false);
            throw;
        }
    }

    // ---------------------------------------------------------------- reading

    private static long Token(int generation, ulong tag) => ((long)generation << TagBits) | (long)(tag & TagMask);

    public override ValueTask<Delivery<T>> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (TryReadCurrent(out Incoming item))
        {
            return Take(item);
        }

        return ReadSlowAsync(cancellationToken);
    }

    private async ValueTask<Delivery<T>> ReadSlowAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Incoming item = await _incoming.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (IsCurrent(item.Token))
            {
                return await Take(item).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reads past deliveries of a lost channel: RabbitMQ delivers those again on the new one.</summary>
    private bool TryReadCurrent(out Incoming item)
    {
        while (_incoming.Reader.TryRead(out item))
        {
            if (IsCurrent(item.Token))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True for a delivery of the channel in use; false for one of a lost channel, which RabbitMQ delivers again.</summary>
    private bool IsCurrent(long token) => LeaseOf(token) is not null;

    /// <summary>The channel in use, when <paramref name="token"/> names it; null for a delivery of a lost channel.</summary>
    private Lease? LeaseOf(long token)
    {
        Lease lease = _lease;
        return (int)(token >> TagBits) == lease.Generation && !lease.Lost ? lease : null;
    }

    public override bool TryRead(out Delivery<T> delivery)
    {
        if (TryReadCurrent(out Incoming item))
        {
            ValueTask<Delivery<T>> taken = Take(item);
            delivery = taken.IsCompletedSuccessfully ? taken.Result : taken.AsTask().GetAwaiter().GetResult();
            return true;
        }

        delivery = default;
        return false;
    }

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => _incoming.Reader.WaitToReadAsync(cancellationToken);

    private ValueTask<Delivery<T>> Take(in Incoming item)
    {
        var delivery = new Delivery<T>(item.Message, item.Attempt, item.Attempt >= _options.MaxDeliveries, this, item.Token);
        if (_options.AutoAck)
        {
            // Settled the moment it is read (at-most-once); its token is never pending, so settling it returns false.
            return AckOnReadAsync(delivery, item.Token);
        }

        _pending[item.Token] = new Pending(item.Message, item.Attempt);
        return new ValueTask<Delivery<T>>(delivery);
    }

    private async ValueTask<Delivery<T>> AckOnReadAsync(Delivery<T> delivery, long token)
    {
        await TrySendAsync(requeue: null, token).ConfigureAwait(false);
        return delivery;
    }

    private readonly record struct Incoming(Message<T> Message, long Token, int Attempt);

    /// <summary>One channel of this subscription; <see cref="Lost"/> once its connection is gone.</summary>
    private sealed class Lease(IChannel channel, int generation)
    {
        private volatile bool _lost;

        public IChannel Channel { get; } = channel;

        public int Generation { get; } = generation;

        public bool Lost
        {
            get => _lost;
            set => _lost = value;
        }
    }

    private readonly record struct Pending(Message<T> Message, int Attempt);
}
