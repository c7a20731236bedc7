using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MessageQueue.RabbitMQ;

/// <summary>
/// The MessageQueue publisher and subscriber contracts on a RabbitMQ server: code written against
/// <see cref="IPublisher"/> and <see cref="ISubscriber"/> runs unchanged. A queue is a durable topic exchange,
/// an event is a routing key, a durable subscription is a quorum queue bound with the subscription's filters,
/// and an ephemeral subscription is an exclusive queue that RabbitMQ deletes when its consumer leaves.
/// </summary>
/// <remarks>
/// <para>A publish completes when RabbitMQ has confirmed the message (publisher confirms), so a completed publish
/// is on the server; it throws when the server refuses it, the connection is lost, or no confirm comes within
/// <see cref="RabbitMqOptions.PublishTimeout"/>. It never reports success for a message the server did not
/// confirm.</para>
/// <para>One transport is one connection and one client identity. Disposing it closes the connection: every
/// subscription it made completes, and what they held unacked goes back to RabbitMQ.</para>
/// <para>Create one with <see cref="ConnectAsync"/>.</para>
/// </remarks>
public sealed class RabbitMqTransport : IPublisher, ISubscriber, IAsyncDisposable
{
    private readonly RabbitMqOptions _options;
    private readonly IConnection _connection;
    private readonly IChannel _publishChannel;
    private readonly JsonSerializerOptions _json;
    private readonly ConcurrentDictionary<string, Lazy<Task>> _declared = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox> _sequences = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Subscription, byte> _subscriptions = new();
    private readonly SemaphoreSlim _topologyGate = new(1, 1);
    private int _disposed;

    private RabbitMqTransport(RabbitMqOptions options, IConnection connection, IChannel publishChannel)
    {
        _options = options;
        _connection = connection;
        _publishChannel = publishChannel;
        _json = options.JsonSerializerOptions ?? JsonSerializerOptions.Default;
    }

    /// <summary>The client's name (<see cref="RabbitMqOptions.ClientName"/>), also the connection's name in RabbitMQ.</summary>
    public string ClientName => _options.ClientName;

    /// <summary>Connects to RabbitMQ.</summary>
    /// <param name="options">Where to connect and how; null for the defaults (a local server, guest user).</param>
    /// <param name="cancellationToken">Cancels the connection attempt.</param>
    /// <returns>The connected transport.</returns>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    /// <exception cref="BrokerUnreachableException">No RabbitMQ server answered at <see cref="RabbitMqOptions.ConnectionString"/>.</exception>
    public static async Task<RabbitMqTransport> ConnectAsync(RabbitMqOptions? options = null, CancellationToken cancellationToken = default)
    {
        RabbitMqOptions settings = (options ?? new RabbitMqOptions()).Clone();
        settings.Validate();
        var factory = new ConnectionFactory
        {
            Uri = new Uri(settings.ConnectionString),
            ClientProvidedName = settings.ClientName,
            AutomaticRecoveryEnabled = false,
            TopologyRecoveryEnabled = false,
        };

        IConnection connection = await factory.CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            IChannel channel = await connection.CreateChannelAsync(
                new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true, outstandingPublisherConfirmationsRateLimiter: null),
                cancellationToken).ConfigureAwait(false);
            return new RabbitMqTransport(settings, connection, channel);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    internal RabbitMqOptions Options => _options;

    internal IConnection Connection => _connection;

    internal JsonSerializerOptions Json => _json;

    /// <summary>
    /// Declares a queue: its topic exchange, its dead-letter exchange and the retained dead-letter queue. Publishing
    /// and subscribing declare a queue on first use too; declaring it first only moves that round trip earlier.
    /// </summary>
    /// <param name="queue">The queue's name, as for the in-memory broker.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when RabbitMQ has the queue's objects.</returns>
    public Task DeclareQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
        ThrowIfDisposed();
        return EnsureQueueAsync(queue).WaitAsync(cancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask<PublishReceipt> PublishAsync<T>(string queue, string eventName, T payload, PublishOptions options = default, CancellationToken cancellationToken = default)
    {
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: false);
        Names.ValidateEvent(eventName, nameof(eventName));
        ThrowIfDisposed();
        if (options.DeliverAfter is not null || options.NotBefore is not null)
        {
            throw new NotSupportedException(
                "Delayed delivery (PublishOptions.DeliverAfter, NotBefore) is not available on RabbitMQ without a plugin; publish when the message is due, or use the in-memory broker.");
        }

        if (options.TimeToLive is { } ttl && ttl <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), ttl, "PublishOptions.TimeToLive must be positive.");
        }

        byte[] body = JsonSerializer.SerializeToUtf8Bytes(payload, _json);
        await EnsureQueueAsync(queue).WaitAsync(cancellationToken).ConfigureAwait(false);

        Guid id = options.MessageId ?? Guid.NewGuid();
        long sequence = Interlocked.Increment(ref _sequences.GetOrAdd(queue, static _ => new StrongBox()).Value);
        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (options.Headers is { } custom)
        {
            foreach (KeyValuePair<string, string> header in custom)
            {
                headers[header.Key] = header.Value;
            }
        }

        headers[Topology.SequenceHeader] = sequence.ToString(CultureInfo.InvariantCulture);
        var properties = new BasicProperties
        {
            MessageId = id.ToString("N"),
            ContentType = "application/json",
            DeliveryMode = DeliveryModes.Persistent,
            Timestamp = new AmqpTimestamp(_options.TimeProvider.GetUtcNow().ToUnixTimeSeconds()),
            Headers = headers,
        };
        if (options.TimeToLive is { } timeToLive)
        {
            properties.Expiration = Math.Max(1, (long)timeToLive.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        }

        await SendAsync(queue, eventName, properties, body, options.Timeout, cancellationToken).ConfigureAwait(false);
        return new PublishReceipt(queue, id, sequence);
    }

    /// <inheritdoc/>
    public async ValueTask<Subscription<T>> SubscribeAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options = null, CancellationToken cancellationToken = default)
    {
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
        ArgumentNullException.ThrowIfNull(filters);
        string[] list = [.. filters];
        if (list.Length == 0)
        {
            throw new ArgumentException("Pass at least one filter ('#' matches every event).", nameof(filters));
        }

        foreach (string filter in list)
        {
            Names.ValidateFilter(filter, nameof(filters));
        }

        SubscriptionOptions settings = options ?? new SubscriptionOptions();
        RabbitMqSubscription<T>.Validate(settings);
        ThrowIfDisposed();
        await EnsureQueueAsync(queue).WaitAsync(cancellationToken).ConfigureAwait(false);

        RabbitMqSubscription<T> subscription = await RabbitMqSubscription<T>.StartAsync(this, queue, list, settings, cancellationToken).ConfigureAwait(false);
        _subscriptions.TryAdd(subscription, 0);
        _ = subscription.Completion.ContinueWith(
            static (_, state) => ((RabbitMqSubscription<T>)state!).Owner._subscriptions.TryRemove((RabbitMqSubscription<T>)state, out byte _),
            subscription,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return subscription;
    }

    /// <summary>
    /// Closes the connection. Every subscription made through this transport completes (successfully: its owner
    /// asked for it), and what it held unacked goes back to RabbitMQ, to be delivered again.
    /// </summary>
    /// <returns>A task that completes when the connection is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (Subscription subscription in _subscriptions.Keys)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }

        try
        {
            await _publishChannel.CloseAsync().ConfigureAwait(false);
            await _connection.CloseAsync().ConfigureAwait(false);
        }
        catch (AlreadyClosedException)
        {
            // Lost before it was closed: there is nothing left to close.
        }

        await _publishChannel.DisposeAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _topologyGate.Dispose();
    }

    /// <summary>Publishes with a confirm: completes when RabbitMQ has the message, throws otherwise.</summary>
    internal async Task SendAsync(string exchange, string routingKey, BasicProperties properties, ReadOnlyMemory<byte> body, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        TimeSpan limit = timeout ?? _options.PublishTimeout;
        using var timer = new CancellationTokenSource(limit, _options.TimeProvider);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);

        try
        {
            await _publishChannel.BasicPublishAsync(exchange, routingKey, mandatory: false, properties, body, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"RabbitMQ did not confirm the publish to '{exchange}' ('{routingKey}') within {limit}; the message may or may not be on the server. Publish it again (with the same PublishOptions.MessageId if consumers deduplicate).");
        }
        catch (PublishException error)
        {
            throw new InvalidOperationException(
                $"RabbitMQ refused the publish to '{exchange}' ('{routingKey}'): it sent a negative acknowledgement. The message is not on the server; publish it again.",
                error);
        }
    }

    /// <summary>Declares the exchange of a queue (and, for a queue that is not a dead-letter queue, its dead-letter exchange and retained queue), once.</summary>
    internal Task EnsureQueueAsync(string queue) =>
        _declared.GetOrAdd(queue, name => new Lazy<Task>(() => DeclareCoreAsync(name))).Value;

    private async Task DeclareCoreAsync(string queue)
    {
        try
        {
            await _topologyGate.WaitAsync().ConfigureAwait(false);
            try
            {
                await _publishChannel.ExchangeDeclareAsync(queue, ExchangeType.Topic, durable: true, autoDelete: false).ConfigureAwait(false);
                string deadLetters = Topology.DeadLetterExchange(queue);
                await _publishChannel.ExchangeDeclareAsync(deadLetters, ExchangeType.Topic, durable: true, autoDelete: false).ConfigureAwait(false);
                await _publishChannel.QueueDeclareAsync(deadLetters, durable: true, exclusive: false, autoDelete: false, arguments: Topology.DeadLetterQueueArguments(_options.MaxDeadLetters)).ConfigureAwait(false);
                await _publishChannel.QueueBindAsync(deadLetters, deadLetters, "#").ConfigureAwait(false);
            }
            finally
            {
                _topologyGate.Release();
            }
        }
        catch
        {
            // Let the next call try again.
            _declared.TryRemove(queue, out _);
            throw;
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private sealed class StrongBox
    {
        public long Value;
    }
}
