using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace MessageQueue.RabbitMQ;

/// <summary>
/// One consumer on RabbitMQ: a channel of its own with a prefetch of <see cref="SubscriptionOptions.MaxInFlight"/>,
/// consuming from the subscription's RabbitMQ queue into a local buffer that the prefetch bounds.
/// </summary>
internal sealed class RabbitMqSubscription<T> : Subscription<T>, IResumable
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

    /// <summary>
    /// After the transport reconnected: a durable subscription consumes again on a channel of the new connection,
    /// and the deliveries its lost channel held come from RabbitMQ again. False, with the subscription faulted,
    /// when that fails.
    /// </summary>
    public async Task<bool> ResumeAsync(IConnection connection, int generation)
    {
        if (Volatile.Read(ref _closing) != 0)
        {
            return false;
        }

        IChannel? channel = null;
        try
        {
            channel = await connection.CreateChannelAsync().ConfigureAwait(false);
            var lease = new Lease(channel, generation);
            _lease = lease;
            await ConsumeAsync(lease, CancellationToken.None).ConfigureAwait(false);
            if (Volatile.Read(ref _closing) != 0)
            {
                // Disposed while it resumed: DisposeAsync may have closed the previous channel, not this one.
                await CloseChannelAsync(channel).ConfigureAwait(false);
                return false;
            }

            return true;
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            if (channel is not null)
            {
                await CloseChannelAsync(channel).ConfigureAwait(false);
            }

            Fault(new SubscriptionClosedException(Queue, Name, SubscriptionCloseReason.ConnectionLost,
                $"The subscription on '{Queue}' could not consume again after RabbitMQ came back ({error.Message}); what it held stays on the server. Subscribe again."));
            return false;
        }
    }

    /// <summary>
    /// The transport lost its connection. What this consumer held goes back to RabbitMQ with the connection: forget it.
    /// A durable subscription waits for <see cref="ResumeAsync"/>; an ephemeral one ends, because RabbitMQ deleted its
    /// queue with the connection and what is published until it subscribes again never reaches it.
    /// </summary>
    public void OnConnectionLost(string reason)
    {
        // From here on nothing from the lost channel is read or settled, and what it left in the buffer goes: RabbitMQ
        // delivers all of it again on the next channel, which may fill the buffer up to MaxInFlight by itself.
        _lease.Lost = true;
        Abandon();
        while (_incoming.Reader.TryRead(out _))
        {
        }

        if (!_durable)
        {
            Fault(new SubscriptionClosedException(Queue, Name, SubscriptionCloseReason.ConnectionLost,
                $"The connection to RabbitMQ was lost ({reason}). An ephemeral subscription's queue goes with its connection, so this subscription has ended; subscribe again once the server is back (RabbitMqTransport.Reconnected)."));
        }
    }

    private async Task ConsumeAsync(Lease lease, CancellationToken cancellationToken)
    {
        IChannel channel = lease.Channel;
        await channel.BasicQosAsync(0, (ushort)Math.Min(_options.MaxInFlight, ushort.MaxValue), global: false, cancellationToken).ConfigureAwait(false);
        string rabbitQueue;
        try
        {
            if (_durable)
            {
                rabbitQueue = Topology.DurableQueueName(Queue, _options.Name!);
                await channel.QueueDeclareAsync(rabbitQueue, durable: true, exclusive: false, autoDelete: false, Topology.DurableQueueArguments(Queue, _options), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            else
            {
                QueueDeclareOk declared = await channel.QueueDeclareAsync(string.Empty, durable: false, exclusive: true, autoDelete: true, Topology.EphemeralQueueArguments(Queue), cancellationToken: cancellationToken).ConfigureAwait(false);
                rabbitQueue = declared.QueueName;
            }

            foreach (string filter in Filters)
            {
                await channel.QueueBindAsync(rabbitQueue, Queue, filter, cancellationToken: cancellationToken).ConfigureAwait(false);
            }

            var consumer = new AsyncEventingBasicConsumer(channel);
            consumer.ReceivedAsync += (_, delivery) => OnReceivedAsync(lease, delivery);
            consumer.UnregisteredAsync += (_, _) => OnConsumerCancelledAsync(lease);
            channel.ChannelShutdownAsync += (_, reason) => OnChannelShutdownAsync(lease, reason);
            await channel.BasicConsumeAsync(rabbitQueue, autoAck: false, consumerTag: string.Empty, noLocal: false, exclusive: _options.Exclusive == ExclusiveMode.Reject, arguments: null, consumer, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationInterruptedException error) when (error.ShutdownReason?.ReplyCode == 403 && _options.Exclusive == ExclusiveMode.Reject)
        {
            throw new SubscriptionInUseException(Queue, _options.Name!, "another RabbitMQ consumer", 0,
                $"The durable subscription '{_options.Name}' on queue '{Queue}' already has a consumer and was subscribed with ExclusiveMode.Reject. Wait for that consumer to leave, or use ExclusiveMode.Standby to take over when it does.");
        }
        catch (OperationInterruptedException error) when (error.ShutdownReason?.ReplyCode == 406)
        {
            throw new InvalidOperationException(
                $"The durable subscription '{_options.Name}' on queue '{Queue}' exists on RabbitMQ with other settings ({error.ShutdownReason.ReplyText}). " +
                "Its MaxDeliveries and Exclusive (Standby) are fixed when RabbitMQ creates the queue: subscribe with the same settings, or delete the RabbitMQ queue first.",
                error);
        }
    }

    private async Task OnReceivedAsync(Lease lease, BasicDeliverEventArgs delivery)
    {
        try
        {
            await ReceiveAsync(lease, delivery).ConfigureAwait(false);
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            // Nothing may escape into the client's dispatcher. A delivery that could not be taken in goes to RabbitMQ's
            // dead-letter exchange (reason "rejected"), never silently away.
            await TrySendAsync(requeue: false, Token(lease.Generation, delivery.DeliveryTag)).ConfigureAwait(false);
        }
    }

    private async Task ReceiveAsync(Lease lease, BasicDeliverEventArgs delivery)
    {
        IReadOnlyBasicProperties properties = delivery.BasicProperties;
        Dictionary<string, string> headers = Topology.ReadHeaders(properties, out long sequence, out int deliveryCount);
        Guid id = Guid.TryParse(properties.MessageId, out Guid parsed) ? parsed : Guid.Empty;
        T payload;
        try
        {
            // The body is only valid inside this callback: it is read here, once.
            payload = JsonSerializer.Deserialize<T>(delivery.Body.Span, _owner.Json)!;
        }
        catch (JsonException error)
        {
            // Never delivered as something it is not: straight to the dead-letter queue, saying why.
            await DeadLetterRawAsync(lease, delivery, headers, $"The payload is not a {typeof(T).Name}: {error.Message}").ConfigureAwait(false);
            return;
        }

        int attempt = (_durable ? deliveryCount : _returns.GetValueOrDefault(id)) + 1;
        DateTimeOffset timestamp = properties.IsTimestampPresent()
            ? DateTimeOffset.FromUnixTimeSeconds(properties.Timestamp.UnixTime)
            : _owner.Options.TimeProvider.GetUtcNow();
        var message = new Message<T>(id, Queue, delivery.RoutingKey, payload, sequence, timestamp, headers);

        // Never waits: RabbitMQ sends at most MaxInFlight unacked deliveries, and the buffer holds that many. If it is
        // full all the same (leftovers of a lost channel not yet read past), the delivery goes back rather than away.
        long token = Token(lease.Generation, delivery.DeliveryTag);
        if (!_incoming.Writer.TryWrite(new Incoming(message, token, attempt)))
        {
            await RequeueAsync(token, id).ConfigureAwait(false);
        }
    }

    /// <summary>RabbitMQ cancelled the consumer (its queue was deleted, say) while the channel stays open.</summary>
    private Task OnConsumerCancelledAsync(Lease lease) => EndUnasked(lease,
        $"RabbitMQ cancelled the consumer of the subscription on '{Queue}' (its queue was deleted, or the server is shutting it down). Subscribe again.");

    private Task OnChannelShutdownAsync(Lease lease, ShutdownEventArgs reason) => EndUnasked(lease,
        $"The RabbitMQ channel of the subscription on '{Queue}' closed ({reason.ReplyCode} {reason.ReplyText}); what it held unacked stays on the server and is delivered again. Subscribe again.");

    /// <summary>
    /// Ends the subscription when the channel in use stopped delivering while its connection stays up. A lost
    /// connection is the transport's to handle (OnConnectionLost, then ResumeAsync for a durable subscription).
    /// </summary>
    private Task EndUnasked(Lease lease, string message)
    {
        if (lease == _lease && Volatile.Read(ref _closing) == 0 && !_owner.IsConnectionLost(lease.Generation))
        {
            Abandon();
            Fault(new SubscriptionClosedException(Queue, Name, SubscriptionCloseReason.ConnectionLost, message));
        }

        return Task.CompletedTask;
    }

    private void Fault(SubscriptionClosedException closed)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        _incoming.Writer.TryComplete(closed);
        _completion.TrySetException(closed);
        _ = CloseLeaseAsync(_lease.Channel);
    }

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

    /// <summary>False, forgetting the delivery, when its channel is gone: a settle of it changes nothing.</summary>
    private bool TakePending(long token, out Pending pending)
    {
        bool found = _pending.TryRemove(token, out pending);
        return found && IsCurrent(token);
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

    protected override async ValueTask<bool> AckCoreAsync(long token, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!TakePending(token, out Pending pending))
        {
            return false;
        }

        _returns.TryRemove(pending.Message.Id, out _);
        return await TrySendAsync(requeue: null, token).ConfigureAwait(false);
    }

    /// <summary>The delay before redelivering a message nacked on <paramref name="attempt"/>, from the subscription's schedule (its last entry repeats).</summary>
    private TimeSpan RedeliveryDelay(int attempt)
    {
        IList<TimeSpan> delays = _options.RedeliveryDelays;
        return delays.Count == 0 ? TimeSpan.Zero : delays[Math.Min(attempt, delays.Count) - 1];
    }

    protected override async ValueTask<bool> NackCoreAsync(long token, TimeSpan? delay, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!TakePending(token, out Pending pending))
        {
            return false;
        }

        if (pending.Attempt >= _options.MaxDeliveries)
        {
            return await DeadLetterAsync(token, pending, DeadLetterReasons.MaxDeliveries, detail: null).ConfigureAwait(false);
        }

        TimeSpan wait = delay ?? RedeliveryDelay(pending.Attempt);
        if (wait > MaxNackDelay)
        {
            _pending.TryAdd(token, pending);
            throw new ArgumentOutOfRangeException(nameof(delay), wait,
                $"On RabbitMQ a nack delay may be at most {MaxNackDelay}: the consumer holds the delivery unacked meanwhile, and RabbitMQ closes a channel that holds one past its consumer timeout. The delivery is still pending.");
        }

        if (wait <= TimeSpan.Zero)
        {
            return await RequeueAsync(token, pending.Message.Id).ConfigureAwait(false);
        }

        // The backoff is kept here: the delivery stays unacked (holding its share of the prefetch, so nothing newer
        // overtakes it with MaxInFlight = 1) and goes back when the delay has passed.
        ITimer timer = _owner.Options.TimeProvider.CreateTimer(
            static state =>
            {
                var (subscription, tag, id) = ((RabbitMqSubscription<T>, long, Guid))state!;
                if (subscription._parked.TryRemove(tag, out ITimer? parked))
                {
                    parked.Dispose();
                    _ = subscription.RequeueAsync(tag, id);
                }
            },
            (this, token, pending.Message.Id),
            Timeout.InfiniteTimeSpan,
            Timeout.InfiniteTimeSpan);
        _parked[token] = timer;
        if (!IsCurrent(token) || Volatile.Read(ref _closing) != 0)
        {
            // The channel was lost (or the subscription closed) meanwhile: RabbitMQ has the delivery back already.
            if (_parked.TryRemove(token, out ITimer? stale))
            {
                stale.Dispose();
            }

            return false;
        }

        timer.Change(wait, Timeout.InfiniteTimeSpan);
        return true;
    }

    protected override async ValueTask<bool> RejectCoreAsync(long token, string? reason, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!TakePending(token, out Pending pending))
        {
            return false;
        }

        return await DeadLetterAsync(token, pending, DeadLetterReasons.Rejected, reason).ConfigureAwait(false);
    }

    protected override ValueTask<bool> ExtendCoreAsync(long token, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new ValueTask<bool>(_pending.ContainsKey(token) && IsCurrent(token));
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            await _completion.Task.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            return;
        }

        Abandon();
        _incoming.Writer.TryComplete();
        await CloseLeaseAsync(_lease.Channel).ConfigureAwait(false);
        _completion.TrySetResult();
    }

    /// <summary>Forgets what this consumer holds: closing the channel gives it all back to RabbitMQ.</summary>
    private void Abandon()
    {
        _pending.Clear();
        foreach (long tag in _parked.Keys)
        {
            if (_parked.TryRemove(tag, out ITimer? timer))
            {
                timer.Dispose();
            }
        }
    }

    /// <summary>
    /// Closes the channel in use once the acks and nacks already on their way are sent. Called after _closing is set,
    /// so no new one starts.
    /// </summary>
    private async Task CloseLeaseAsync(IChannel channel)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _sendsDone, done);
        if (Volatile.Read(ref _sending) == 0)
        {
            done.TrySetResult();
        }

        await done.Task.ConfigureAwait(false);
        await CloseChannelAsync(channel).ConfigureAwait(false);
    }

    private static async Task CloseChannelAsync(IChannel channel)
    {
        try
        {
            await channel.CloseAsync().ConfigureAwait(false);
        }
        catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException or IOException)
        {
            // Already gone with its connection: nothing is left to give back.
        }

        await channel.DisposeAsync().ConfigureAwait(false);
    }

    private async Task<bool> RequeueAsync(long tag, Guid id)
    {
        if (!_durable)
        {
            _returns.AddOrUpdate(id, 1, static (_, count) => count + 1);
        }

        return await TrySendAsync(requeue: true, tag).ConfigureAwait(false);
    }

    /// <summary>
    /// Publishes a copy with the reason and history in headers to the queue's dead-letter exchange (confirmed), then
    /// acks the original. If the process dies between the two, the message is delivered again (at-least-once).
    /// </summary>
    private async Task<bool> DeadLetterAsync(long tag, Pending pending, string reason, string? detail)
    {
        Message<T> message = pending.Message;
        Dictionary<string, object?> headers = DeadLetterHeaders(message.Headers, reason, detail);
        headers[MessageHeaders.Attempts] = pending.Attempt.ToString(CultureInfo.InvariantCulture);
        headers[MessageHeaders.SourceSequence] = message.Sequence.ToString(CultureInfo.InvariantCulture);
        headers[MessageHeaders.DeadLetteredAt] = _owner.Options.TimeProvider.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);
        headers[Topology.SequenceHeader] = message.Sequence.ToString(CultureInfo.InvariantCulture);
        var properties = new BasicProperties
        {
            MessageId = message.Id.ToString("N"),
            ContentType = "application/json",
            DeliveryMode = DeliveryModes.Persistent,
            Timestamp = new AmqpTimestamp(message.Timestamp.ToUnixTimeSeconds()),
            Headers = headers,
        };
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(message.Payload, _owner.Json);
        try
        {
            await _owner.SendAsync(Topology.DeadLetterExchange(Queue), message.Event, properties, body, timeout: null, CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
            // Not dead-lettered: the delivery goes back to be delivered again rather than hold its prefetch slot.
            await RequeueAsync(tag, message.Id).ConfigureAwait(false);
            throw;
        }

        _returns.TryRemove(message.Id, out _);
        return await TrySendAsync(requeue: null, tag).ConfigureAwait(false);
    }

    private async Task DeadLetterRawAsync(Lease lease, BasicDeliverEventArgs delivery, Dictionary<string, string> headers, string detail)
    {
        Dictionary<string, object?> copy = DeadLetterHeaders(headers, DeadLetterReasons.Rejected, detail);
        var properties = new BasicProperties
        {
            MessageId = delivery.BasicProperties.MessageId,
            ContentType = delivery.BasicProperties.ContentType,
            DeliveryMode = DeliveryModes.Persistent,
            Headers = copy,
        };
        await _owner.SendAsync(Topology.DeadLetterExchange(Queue), delivery.RoutingKey, properties, delivery.Body.ToArray(), timeout: null, CancellationToken.None).ConfigureAwait(false);
        await TrySendAsync(requeue: null, Token(lease.Generation, delivery.DeliveryTag)).ConfigureAwait(false);
    }

    /// <summary>A message's headers, with why and where from it was dead-lettered.</summary>
    private Dictionary<string, object?> DeadLetterHeaders(IReadOnlyDictionary<string, string> original, string reason, string? detail)
    {
        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> header in original)
        {
            headers[header.Key] = header.Value;
        }

        headers[MessageHeaders.DeadLetterReason] = reason;
        if (detail is not null)
        {
            headers[MessageHeaders.DeadLetterDetail] = detail;
        }

        headers[MessageHeaders.SourceQueue] = Queue;
        if (Name is not null)
        {
            headers[MessageHeaders.SourceSubscription] = Name;
        }

        return headers;
    }

    /// <summary>
    /// Sends an ack (<paramref name="requeue"/> null) or a nack that requeues; false when the channel is gone (RabbitMQ
    /// has taken the delivery back).
    /// </summary>
    private async Task<bool> TrySendAsync(bool? requeue, long token)
    {
        if (LeaseOf(token) is not { } lease)
        {
            return false;
        }

        ulong tag = (ulong)token & TagMask;
        Interlocked.Increment(ref _sending);
        try
        {
            if (Volatile.Read(ref _closing) != 0)
            {
                // Closing: the channel's close gives the delivery back to RabbitMQ.
                return false;
            }

            if (requeue is null)
            {
                await lease.Channel.BasicAckAsync(tag, multiple: false, CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                await lease.Channel.BasicNackAsync(tag, multiple: false, requeue: requeue.Value, CancellationToken.None).ConfigureAwait(false);
            }

            return true;
        }
        catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException or IOException)
        {
            return false;
        }
        finally
        {
            if (Interlocked.Decrement(ref _sending) == 0 && Volatile.Read(ref _closing) != 0)
            {
                Volatile.Read(ref _sendsDone)?.TrySetResult();
            }
        }
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
