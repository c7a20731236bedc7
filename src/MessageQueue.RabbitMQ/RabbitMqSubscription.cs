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
internal sealed class RabbitMqSubscription<T> : Subscription<T>
{
    private readonly RabbitMqTransport _owner;
    private readonly IChannel _channel;
    private readonly SubscriptionOptions _options;
    private readonly bool _durable;
    private readonly Channel<Incoming> _incoming;
    private readonly ConcurrentDictionary<ulong, Pending> _pending = new();
    private readonly ConcurrentDictionary<ulong, ITimer> _parked = new();

    // Ephemeral queues are exclusive to this consumer, so it counts returns itself; quorum queues count them
    // in x-delivery-count.
    private readonly ConcurrentDictionary<Guid, int> _returns = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _closing;

    private RabbitMqSubscription(RabbitMqTransport owner, IChannel channel, string queue, string[] filters, SubscriptionOptions options)
    {
        _owner = owner;
        _channel = channel;
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
        options.Validate(nameof(options));
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

        if (options.Exclusive != ExclusiveMode.None && options.Name is null)
        {
            throw new ArgumentException("An exclusive mode needs a durable subscription: set SubscriptionOptions.Name.", nameof(options));
        }
    }

    public static async Task<RabbitMqSubscription<T>> StartAsync(RabbitMqTransport owner, string queue, string[] filters, SubscriptionOptions options, CancellationToken cancellationToken)
    {
        IChannel channel = await owner.Connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var subscription = new RabbitMqSubscription<T>(owner, channel, queue, filters, options);
        try
        {
            await subscription.ConsumeAsync(cancellationToken).ConfigureAwait(false);
            return subscription;
        }
        catch
        {
            await subscription.CloseChannelAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task ConsumeAsync(CancellationToken cancellationToken)
    {
        await _channel.BasicQosAsync(0, (ushort)Math.Min(_options.MaxInFlight, ushort.MaxValue), global: false, cancellationToken).ConfigureAwait(false);
        string rabbitQueue;
        try
        {
            if (_durable)
            {
                rabbitQueue = Topology.DurableQueueName(Queue, _options.Name!);
                await _channel.QueueDeclareAsync(rabbitQueue, durable: true, exclusive: false, autoDelete: false, Topology.DurableQueueArguments(Queue, _options), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            else
            {
                QueueDeclareOk declared = await _channel.QueueDeclareAsync(string.Empty, durable: false, exclusive: true, autoDelete: true, Topology.EphemeralQueueArguments(Queue), cancellationToken: cancellationToken).ConfigureAwait(false);
                rabbitQueue = declared.QueueName;
            }

            foreach (string filter in Filters)
            {
                await _channel.QueueBindAsync(rabbitQueue, Queue, filter, cancellationToken: cancellationToken).ConfigureAwait(false);
            }

            var consumer = new AsyncEventingBasicConsumer(_channel);
            consumer.ReceivedAsync += OnReceivedAsync;
            _channel.ChannelShutdownAsync += OnChannelShutdownAsync;
            await _channel.BasicConsumeAsync(rabbitQueue, autoAck: false, consumerTag: string.Empty, noLocal: false, exclusive: _options.Exclusive == ExclusiveMode.Reject, arguments: null, consumer, cancellationToken).ConfigureAwait(false);
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

    private async Task OnReceivedAsync(object sender, BasicDeliverEventArgs delivery)
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
            await DeadLetterRawAsync(delivery, headers, $"The payload is not a {typeof(T).Name}: {error.Message}").ConfigureAwait(false);
            return;
        }

        int attempt = (_durable ? deliveryCount : _returns.GetValueOrDefault(id)) + 1;
        long timestamp = properties.IsTimestampPresent()
            ? DateTimeOffset.FromUnixTimeSeconds(properties.Timestamp.UnixTime).UtcTicks
            : _owner.Options.TimeProvider.GetUtcNow().UtcTicks;
        var message = new Message<T>(id, Queue, delivery.RoutingKey, payload, sequence, timestamp, headers);

        // Never waits: RabbitMQ sends at most MaxInFlight unacked deliveries, and the buffer holds that many.
        _incoming.Writer.TryWrite(new Incoming(message, delivery.DeliveryTag, attempt));
    }

    private Task OnChannelShutdownAsync(object sender, ShutdownEventArgs reason)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return Task.CompletedTask;
        }

        // Not asked for: the connection or the channel was lost, or the server cancelled the consumer.
        var closed = new SubscriptionClosedException(Queue, Name, SubscriptionCloseReason.ConnectionLost,
            $"The RabbitMQ channel of the subscription on '{Queue}' closed ({reason.ReplyCode} {reason.ReplyText}); what it held unacked stays on the server and is delivered again. Subscribe again once the server is back.");
        Abandon();
        _incoming.Writer.TryComplete(closed);
        _completion.TrySetException(closed);
        return Task.CompletedTask;
    }

    public override ValueTask<Delivery<T>> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_incoming.Reader.TryRead(out Incoming item))
        {
            return Take(item);
        }

        return ReadSlowAsync(cancellationToken);
    }

    private async ValueTask<Delivery<T>> ReadSlowAsync(CancellationToken cancellationToken)
    {
        Incoming item = await _incoming.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return await Take(item).ConfigureAwait(false);
    }

    public override bool TryRead(out Delivery<T> delivery)
    {
        if (_incoming.Reader.TryRead(out Incoming item))
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
        var delivery = new Delivery<T>(item.Message, item.Attempt, item.Attempt >= _options.MaxDeliveries, this, (long)item.Tag);
        if (_options.AutoAck)
        {
            // Settled the moment it is read (at-most-once); its token is never pending, so settling it returns false.
            return AckOnReadAsync(delivery, item.Tag);
        }

        _pending[item.Tag] = new Pending(item.Message, item.Attempt);
        return new ValueTask<Delivery<T>>(delivery);
    }

    private async ValueTask<Delivery<T>> AckOnReadAsync(Delivery<T> delivery, ulong tag)
    {
        await TrySendAsync(requeue: null, tag).ConfigureAwait(false);
        return delivery;
    }

    protected internal override async ValueTask<bool> AckCoreAsync(long token, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!_pending.TryRemove((ulong)token, out Pending pending))
        {
            return false;
        }

        _returns.TryRemove(pending.Message.Id, out _);
        return await TrySendAsync(requeue: null, (ulong)token).ConfigureAwait(false);
    }

    protected internal override async ValueTask<bool> NackCoreAsync(long token, TimeSpan? delay, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ulong tag = (ulong)token;
        if (!_pending.TryRemove(tag, out Pending pending))
        {
            return false;
        }

        if (pending.Attempt >= _options.MaxDeliveries)
        {
            return await DeadLetterAsync(tag, pending, DeadLetterReasons.MaxDeliveries, detail: null).ConfigureAwait(false);
        }

        TimeSpan wait = delay ?? _options.RedeliveryDelay(pending.Attempt);
        if (wait <= TimeSpan.Zero)
        {
            return await RequeueAsync(tag, pending.Message.Id).ConfigureAwait(false);
        }

        // The backoff is kept here: the delivery stays unacked (holding its share of the prefetch, so nothing newer
        // overtakes it with MaxInFlight = 1) and goes back when the delay has passed.
        ITimer timer = _owner.Options.TimeProvider.CreateTimer(
            static state =>
            {
                var (subscription, tag, id) = ((RabbitMqSubscription<T>, ulong, Guid))state!;
                if (subscription._parked.TryRemove(tag, out ITimer? parked))
                {
                    parked.Dispose();
                    _ = subscription.RequeueAsync(tag, id);
                }
            },
            (this, tag, pending.Message.Id),
            Timeout.InfiniteTimeSpan,
            Timeout.InfiniteTimeSpan);
        _parked[tag] = timer;
        timer.Change(wait, Timeout.InfiniteTimeSpan);
        return true;
    }

    protected internal override async ValueTask<bool> RejectCoreAsync(long token, string? reason, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ulong tag = (ulong)token;
        if (!_pending.TryRemove(tag, out Pending pending))
        {
            return false;
        }

        return await DeadLetterAsync(tag, pending, DeadLetterReasons.Rejected, reason).ConfigureAwait(false);
    }

    protected internal override ValueTask<bool> ExtendCoreAsync(long token, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new ValueTask<bool>(_pending.ContainsKey((ulong)token));
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
        await CloseChannelAsync().ConfigureAwait(false);
        _completion.TrySetResult();
    }

    /// <summary>Forgets what this consumer holds: closing the channel gives it all back to RabbitMQ.</summary>
    private void Abandon()
    {
        _pending.Clear();
        foreach (ulong tag in _parked.Keys)
        {
            if (_parked.TryRemove(tag, out ITimer? timer))
            {
                timer.Dispose();
            }
        }
    }

    private async Task CloseChannelAsync()
    {
        try
        {
            await _channel.CloseAsync().ConfigureAwait(false);
        }
        catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException)
        {
            // Already gone with its connection: nothing is left to give back.
        }

        await _channel.DisposeAsync().ConfigureAwait(false);
    }

    private async Task<bool> RequeueAsync(ulong tag, Guid id)
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
    private async Task<bool> DeadLetterAsync(ulong tag, Pending pending, string reason, string? detail)
    {
        Message<T> message = pending.Message;
        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> header in message.Headers)
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
        await _owner.SendAsync(Topology.DeadLetterExchange(Queue), message.Event, properties, body, timeout: null, CancellationToken.None).ConfigureAwait(false);
        _returns.TryRemove(message.Id, out _);
        return await TrySendAsync(requeue: null, tag).ConfigureAwait(false);
    }

    private async Task DeadLetterRawAsync(BasicDeliverEventArgs delivery, Dictionary<string, string> headers, string detail)
    {
        var copy = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> header in headers)
        {
            copy[header.Key] = header.Value;
        }

        copy[MessageHeaders.DeadLetterReason] = DeadLetterReasons.Rejected;
        copy[MessageHeaders.DeadLetterDetail] = detail;
        copy[MessageHeaders.SourceQueue] = Queue;
        if (Name is not null)
        {
            copy[MessageHeaders.SourceSubscription] = Name;
        }

        var properties = new BasicProperties
        {
            MessageId = delivery.BasicProperties.MessageId,
            ContentType = delivery.BasicProperties.ContentType,
            DeliveryMode = DeliveryModes.Persistent,
            Headers = copy,
        };
        await _owner.SendAsync(Topology.DeadLetterExchange(Queue), delivery.RoutingKey, properties, delivery.Body.ToArray(), timeout: null, CancellationToken.None).ConfigureAwait(false);
        await TrySendAsync(requeue: null, delivery.DeliveryTag).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends an ack (<paramref name="requeue"/> null) or a nack that requeues; false when the channel is gone (RabbitMQ
    /// has taken the delivery back).
    /// </summary>
    private async Task<bool> TrySendAsync(bool? requeue, ulong tag)
    {
        try
        {
            if (requeue is null)
            {
                await _channel.BasicAckAsync(tag, multiple: false, CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                await _channel.BasicNackAsync(tag, multiple: false, requeue: requeue.Value, CancellationToken.None).ConfigureAwait(false);
            }

            return true;
        }
        catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException)
        {
            return false;
        }
    }

    private readonly record struct Incoming(Message<T> Message, ulong Tag, int Attempt);

    private readonly record struct Pending(Message<T> Message, int Attempt);
}
