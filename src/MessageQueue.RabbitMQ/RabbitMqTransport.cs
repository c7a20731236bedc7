using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
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
/// <para>When the connection is lost, <see cref="ConnectionLost"/> is raised and the transport reconnects with
/// backoff (<see cref="RabbitMqOptions.ReconnectDelays"/>), then raises <see cref="Reconnected"/>. Durable
/// subscriptions consume again on the new connection: what they held unacked comes again from RabbitMQ, and a
/// settle of a delivery from the lost connection returns false. Ephemeral subscriptions end, their
/// <see cref="Subscription.Completion"/> faulted with <see cref="SubscriptionClosedException"/>
/// (<see cref="SubscriptionCloseReason.ConnectionLost"/>), because RabbitMQ deletes their queues with the
/// connection. A publish while the connection is down waits for it, within its timeout.</para>
/// <para>Create one with <see cref="ConnectAsync"/>.</para>
/// </remarks>
public sealed class RabbitMqTransport : ITransport, IDisposable
{
    private readonly RabbitMqOptions _options;
    private readonly ConnectionFactory _factory;
    private readonly JsonSerializerOptions _json;
    private readonly Lock _linkGate = new();
    private readonly CancellationTokenSource _disposing = new();
    private Link? _link;

    // Completed while connected; replaced by a pending one when the connection is lost.
    private TaskCompletionSource<Link> _connected;
    private readonly ConcurrentDictionary<string, Lazy<Task>> _declared = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox> _sequences = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Subscription, byte> _subscriptions = new();
    private int _disposed;

    private RabbitMqTransport(RabbitMqOptions options, ConnectionFactory factory, Link link)
    {
        _options = options;
        _factory = factory;
        _json = options.JsonSerializerOptions ?? JsonSerializerOptions.Default;
        _link = link;
        _connected = new TaskCompletionSource<Link>(TaskCreationOptions.RunContinuationsAsynchronously);
        _connected.SetResult(link);
        Watch(link);
    }

    /// <summary>Gets <c>"rabbitmq"</c>, the OpenTelemetry messaging.system of this transport.</summary>
    public string MessagingSystem => "rabbitmq";

    /// <summary>
    /// Creates a transport that connects in the background, retrying with <see cref="RabbitMqOptions.ReconnectDelays"/>
    /// until the server answers. Publishes and subscribes wait for the connection (a publish within its timeout, a
    /// subscribe within <see cref="RabbitMqOptions.ConnectTimeout"/>). This is how the DI registration
    /// (<c>UseRabbitMq</c>) creates it; <see cref="ConnectAsync"/> connects first and fails at once instead.
    /// </summary>
    /// <param name="options">Where to connect and how; null for the defaults (a local server, guest user).</param>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    public RabbitMqTransport(RabbitMqOptions? options = null)
    {
        _options = (options ?? new RabbitMqOptions()).Clone();
        _options.Validate();
        _factory = CreateFactory(_options);
        _json = _options.JsonSerializerOptions ?? JsonSerializerOptions.Default;
        _connected = new TaskCompletionSource<Link>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Task.Run(() => ConnectLoopAsync(lost: null));
    }

    /// <summary>
    /// Raised when the connection to RabbitMQ is lost (the server stopped, the network failed). The transport is
    /// already reconnecting. Raised on the thread pool; an exception from a handler is ignored.
    /// </summary>
    public event EventHandler<RabbitMqConnectionEventArgs>? ConnectionLost;

    /// <summary>
    /// Raised when the transport has connected again after <see cref="ConnectionLost"/>, once durable subscriptions
    /// consume again. Raised on the thread pool; an exception from a handler is ignored.
    /// </summary>
    public event EventHandler<RabbitMqConnectionEventArgs>? Reconnected;

    /// <summary>Whether the transport is connected now.</summary>
    public bool IsConnected => _connected.Task.IsCompletedSuccessfully;

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
        ConnectionFactory factory = CreateFactory(settings);
        Link link = await OpenAsync(factory, generation: 1, cancellationToken).ConfigureAwait(false);
        link.Established = true;
        return new RabbitMqTransport(settings, factory, link);
    }

    private static ConnectionFactory CreateFactory(RabbitMqOptions options) => new()
    {
        Uri = new Uri(options.ConnectionString),
        ClientProvidedName = options.ClientName,
        // The transport reconnects itself, so that it can tell subscriptions and resume them in order.
        AutomaticRecoveryEnabled = false,
        TopologyRecoveryEnabled = false,
    };

    /// <summary>The connection, waiting for it while it is down, up to <paramref name="timeout"/>.</summary>
    private async Task<Link> WhenConnectedAsync(TimeSpan timeout, string operation, CancellationToken cancellationToken)
    {
        Task<Link> connected = _connected.Task;
        await WaitForConnectionAsync(connected, timeout, $"{operation} did not happen", cancellationToken).ConfigureAwait(false);
        return await connected.ConfigureAwait(false);
    }

    /// <summary>Waits for <paramref name="task"/>, which needs the connection; a timeout says what did not happen and why.</summary>
    private async Task WaitForConnectionAsync(Task task, TimeSpan timeout, string consequence, CancellationToken cancellationToken)
    {
        if (task.IsCompletedSuccessfully)
        {
            return;
        }

        try
        {
            await task.WaitAsync(timeout, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException(
                $"No connection to RabbitMQ at {_factory.Endpoint} within {timeout}, so {consequence}. Check that the server is running and reachable (RabbitMqOptions.ConnectionString); the transport keeps trying to connect.");
        }
    }

    private static async Task<Link> OpenAsync(ConnectionFactory factory, int generation, CancellationToken cancellationToken)
    {
        IConnection connection = await factory.CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return new Link(connection, await OpenPublishChannelAsync(connection, cancellationToken).ConfigureAwait(false), generation);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static Task<IChannel> OpenPublishChannelAsync(IConnection connection, CancellationToken cancellationToken) =>
        connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true, outstandingPublisherConfirmationsRateLimiter: null),
            cancellationToken);

    internal RabbitMqOptions Options => _options;

    internal JsonSerializerOptions Json => _json;

    /// <summary>
    /// Declares a queue: its topic exchange, its dead-letter exchange and the retained dead-letter queue. Publishing
    /// and subscribing declare a queue on first use too; declaring it first only moves that round trip earlier.
    /// </summary>
    /// <param name="queue">The queue's name, as for the in-memory broker.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when RabbitMQ has the queue's objects.</returns>
    /// <exception cref="TimeoutException">The connection is down and did not come back within <see cref="RabbitMqOptions.ConnectTimeout"/>.</exception>
    public Task DeclareQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        MessageRules.ThrowIfInvalidQueueName(queue, allowDeadLetterQueue: true);
        ThrowIfDisposed();
        return EnsureQueueAsync(queue, _options.ConnectTimeout, cancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask<PublishReceipt> PublishAsync<T>(string queue, string eventName, T payload, PublishOptions options = default, CancellationToken cancellationToken = default)
    {
        MessageRules.ThrowIfInvalidQueueName(queue);
        MessageRules.ThrowIfInvalidEventName(eventName);
        MessageRules.ThrowIfNullPayload(payload, queue, eventName);
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
        TimeSpan limit = options.Timeout ?? _options.PublishTimeout;
        await EnsureQueueAsync(queue, limit, cancellationToken).ConfigureAwait(false);

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

        await SendAsync(queue, eventName, properties, body, limit, cancellationToken).ConfigureAwait(false);
        return new PublishReceipt(queue, id, sequence);
    }

    /// <inheritdoc/>
    public async ValueTask<Subscription<T>> SubscribeAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options = null, CancellationToken cancellationToken = default)
    {
        MessageRules.ThrowIfInvalidQueueName(queue, allowDeadLetterQueue: true);
        ArgumentNullException.ThrowIfNull(filters);
        string[] list = [.. filters];
        if (list.Length == 0)
        {
            throw new ArgumentException("Pass at least one filter ('#' matches every event).", nameof(filters));
        }

        foreach (string filter in list)
        {
            MessageRules.ThrowIfInvalidFilter(filter, nameof(filters));
        }

        SubscriptionOptions settings = options ?? new SubscriptionOptions();
        RabbitMqSubscription<T>.Validate(settings);
        ThrowIfDisposed();
        await EnsureQueueAsync(queue, _options.ConnectTimeout, cancellationToken).ConfigureAwait(false);

        Link link = await WhenConnectedAsync(_options.ConnectTimeout, $"the subscription to '{queue}'", cancellationToken).ConfigureAwait(false);
        RabbitMqSubscription<T> subscription = await RabbitMqSubscription<T>.StartAsync(this, link.Connection, link.Generation, queue, list, settings, cancellationToken).ConfigureAwait(false);
        _subscriptions.TryAdd(subscription, 0);
        _ = subscription.Completion.ContinueWith(
            static (_, state) => ((RabbitMqSubscription<T>)state!).Owner._subscriptions.TryRemove((RabbitMqSubscription<T>)state, out byte _),
            subscription,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

        // Disposed meanwhile: DisposeAsync may have taken its list of subscriptions before this one was in it.
        if (_disposing.IsCancellationRequested)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
            ThrowIfDisposed();
        }

        return subscription;
    }

    /// <summary>
    /// Closes the connection as <see cref="DisposeAsync"/> does, blocking the calling thread until that completes. Prefer
    /// <see cref="DisposeAsync"/>; this is for callers that can only dispose synchronously, such as a service
    /// provider disposed with <c>using</c> rather than <c>await using</c>.
    /// </summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>
    /// Closes the connection. Every subscription made through this transport completes (successfully: its owner
    /// asked for it), and what it held unacked goes back to RabbitMQ, to be delivered again. Returns promptly while
    /// the connection is down, too.
    /// </summary>
    /// <returns>A task that completes when the connection is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Link? link;
        lock (_linkGate)
        {
            // _disposed is set: a reconnection that completes after this closes its own new connection.
            link = _link;
            _connected.TrySetException(new ObjectDisposedException(nameof(RabbitMqTransport)));
        }

        await _disposing.CancelAsync().ConfigureAwait(false);

        foreach (Subscription subscription in _subscriptions.Keys)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }

        if (link is not null)
        {
            await link.CloseAsync().ConfigureAwait(false);
        }
    }

    /// <summary>True when the connection of <paramref name="generation"/> is gone (lost or replaced).</summary>
    internal bool IsConnectionLost(int generation)
    {
        Link? link = _link;
        return link is null || link.Generation != generation || link.Lost || !link.Connection.IsOpen;
    }

    private void Watch(Link link) =>
        link.Connection.ConnectionShutdownAsync += (_, reason) => OnConnectionShutdownAsync(link, reason);

    private Task OnConnectionShutdownAsync(Link link, ShutdownEventArgs reason)
    {
        if (reason.Initiator != ShutdownInitiator.Application)
        {
            LinkLost(link, $"{reason.ReplyCode} {reason.ReplyText}".Trim(), reason.Cause as Exception);
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// The connection of <paramref name="link"/> is gone. If it was in use, publishes from now on wait for the next
    /// one; subscriptions are told, <see cref="ConnectionLost"/> is raised and reconnecting starts, once per
    /// connection. A connection lost while it was still being set up is the reconnect loop's to notice.
    /// </summary>
    private void LinkLost(Link link, string why, Exception? cause)
    {
        lock (_linkGate)
        {
            if (link.Lost)
            {
                return;
            }

            link.Lost = true;
            if (Volatile.Read(ref _disposed) != 0 || link != _link || !link.Established)
            {
                return;
            }

            _connected = new TaskCompletionSource<Link>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        // Every declaration is checked again on the next connection (the server may have lost its definitions).
        _declared.Clear();
        foreach (Subscription subscription in _subscriptions.Keys)
        {
            ((IResumable)subscription).OnConnectionLost(why);
        }

        Raise(ConnectionLost, new RabbitMqConnectionEventArgs(cause ?? new IOException($"The connection to RabbitMQ was lost: {why}."), attempts: 0));
        _ = Task.Run(() => ConnectLoopAsync(link));
    }

    /// <summary>
    /// Connects (again, after <paramref name="lost"/>) with backoff until it works or the transport is disposed; then
    /// resumes durable subscriptions. The first connection of a transport created with the constructor tries at once.
    /// A connection lost while subscriptions resume on it is replaced in turn, within the same loop.
    /// </summary>
    private async Task ConnectLoopAsync(Link? lost)
    {
        IList<TimeSpan> delays = _options.ReconnectDelays;
        int attempt = 0;
        if (lost is not null)
        {
            await lost.CloseAsync().ConfigureAwait(false);
        }

        int generation = lost?.Generation ?? 0;
        while (!_disposing.IsCancellationRequested)
        {
            TimeSpan delay = lost is null && attempt == 0 ? TimeSpan.Zero
                : delays.Count == 0 ? TimeSpan.Zero
                : delays[Math.Min(lost is null ? attempt - 1 : attempt, delays.Count - 1)];
            attempt++;
            Link? link = null;
            try
            {
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, _options.TimeProvider, _disposing.Token).ConfigureAwait(false);
                }

                link = await OpenAsync(_factory, ++generation, _disposing.Token).ConfigureAwait(false);
                lock (_linkGate)
                {
                    if (Volatile.Read(ref _disposed) == 0)
                    {
                        _link = link;
                    }
                }

                if (_link != link)
                {
                    // Disposed while this connection opened.
                    await link.CloseAsync().ConfigureAwait(false);
                    return;
                }

                Watch(link);
                foreach (Subscription subscription in _subscriptions.Keys)
                {
                    if (subscription is IResumable { IsDurable: true } resumable)
                    {
                        await resumable.ResumeAsync(link.Connection, link.Generation).ConfigureAwait(false);
                    }
                }

                lock (_linkGate)
                {
                    if (!link.Lost && link.Connection.IsOpen && Volatile.Read(ref _disposed) == 0)
                    {
                        link.Established = true;
                        _connected.TrySetResult(link);
                        link = null;
                    }
                }

                if (link is null)
                {
                    if (lost is not null)
                    {
                        Raise(Reconnected, new RabbitMqConnectionEventArgs(null, attempt));
                    }

                    return;
                }

                // Lost again before it was in use: tell the subscriptions that resumed on it, and try once more.
                link.Lost = true;
                foreach (Subscription subscription in _subscriptions.Keys)
                {
                    ((IResumable)subscription).OnConnectionLost("the connection was lost again while subscriptions resumed");
                }
            }
            catch (OperationCanceledException) when (_disposing.IsCancellationRequested)
            {
                break;
            }
            catch (Exception error) when (error is not OutOfMemoryException)
            {
                // Not back yet (refused, timed out, closed halfway): the next step of the backoff.
            }

            if (link is not null)
            {
                await link.CloseAsync().ConfigureAwait(false);
            }
        }

        // Disposed while connecting: a connection opened meanwhile (and perhaps never published) is closed here.
        Link? last = _link;
        if (last is not null && !last.Established && Volatile.Read(ref _disposed) != 0)
        {
            await last.CloseAsync().ConfigureAwait(false);
        }
    }

    private void Raise(EventHandler<RabbitMqConnectionEventArgs>? handler, RabbitMqConnectionEventArgs args)
    {
        if (handler is null)
        {
            return;
        }

        _ = Task.Run(() =>
        {
            try
            {
                handler(this, args);
            }
            catch (Exception error) when (error is not OutOfMemoryException)
            {
                // A handler's failure is its own; the transport carries on.
            }
        });
    }

    /// <summary>Publishes with a confirm: completes when RabbitMQ has the message, throws otherwise.</summary>
    internal async Task SendAsync(string exchange, string routingKey, BasicProperties properties, ReadOnlyMemory<byte> body, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        TimeSpan limit = timeout ?? _options.PublishTimeout;
        using var timer = new CancellationTokenSource(limit, _options.TimeProvider);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        IChannel channel;
        while (true)
        {
            ThrowIfDisposed();
            Link link;
            try
            {
                // While the connection is down, wait for it to come back, within the publish's timeout.
                link = await _connected.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException(
                    $"The connection to RabbitMQ is down and did not come back within {limit}: the message to '{exchange}' ('{routingKey}') was not published. Publish it again later.");
            }

            IChannel publish = link.Publish;
            if (publish.IsOpen)
            {
                channel = publish;
                break;
            }

            if (link.Connection.IsOpen && !link.Lost)
            {
                // Only the publish channel closed (the server refused something on it): open another on the same connection.
                await link.ReopenPublishAsync(publish, deadline.Token).ConfigureAwait(false);
                _declared.Clear();
                continue;
            }

            // Closed before anything was sent on it (the shutdown event may not have been handled yet): the message
            // is certainly not on the server, so wait for the next connection rather than fail.
            LinkLost(link, link.Connection.CloseReason?.ReplyText ?? "the channel closed", null);
        }

        try
        {
            await channel.BasicPublishAsync(exchange, routingKey, mandatory: false, properties, body, deadline.Token).ConfigureAwait(false);
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
        catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or IOException or ObjectDisposedException)
        {
            ThrowIfDisposed();
            throw new InvalidOperationException(
                $"The connection to RabbitMQ was lost before it confirmed the publish to '{exchange}' ('{routingKey}'); the message may or may not be on the server. Publish it again (with the same PublishOptions.MessageId if consumers deduplicate) once the transport has reconnected.",
                error);
        }
    }

    /// <summary>
    /// Declares the exchange of a queue (and, for a queue that is not a dead-letter queue, its dead-letter exchange and
    /// retained queue), once per connection. Waits for the connection within <paramref name="timeout"/>.
    /// </summary>
    internal Task EnsureQueueAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task declared = _declared.GetOrAdd(queue, name => new Lazy<Task>(() => DeclareCoreAsync(name))).Value;
        return WaitForConnectionAsync(declared, timeout, $"queue '{queue}' could not be declared, and what needed it (a publish, a subscribe) did not happen", cancellationToken);
    }

    /// <summary>
    /// Declares on a channel of its own, so that a refusal (a queue that exists with other arguments) closes only that
    /// channel and reaches the caller, never the shared publish channel.
    /// </summary>
    private async Task DeclareCoreAsync(string queue)
    {
        try
        {
            Link link = await _connected.Task.ConfigureAwait(false);
            IChannel channel = await link.Connection.CreateChannelAsync().ConfigureAwait(false);
            try
            {
                await channel.ExchangeDeclareAsync(queue, ExchangeType.Topic, durable: true, autoDelete: false).ConfigureAwait(false);
                string deadLetters = Topology.DeadLetterExchange(queue);
                await channel.ExchangeDeclareAsync(deadLetters, ExchangeType.Topic, durable: true, autoDelete: false).ConfigureAwait(false);
                await channel.QueueDeclareAsync(deadLetters, durable: true, exclusive: false, autoDelete: false, arguments: Topology.DeadLetterQueueArguments(_options.MaxDeadLetters)).ConfigureAwait(false);
                await channel.QueueBindAsync(deadLetters, deadLetters, "#").ConfigureAwait(false);
                await channel.CloseAsync().ConfigureAwait(false);
            }
            catch (OperationInterruptedException error) when (error.ShutdownReason?.ReplyCode == 406)
            {
                throw new InvalidOperationException(
                    $"RabbitMQ refused to declare queue '{queue}': an object of the same name exists with other settings ({error.ShutdownReason.ReplyText}). " +
                    "Use the same RabbitMqOptions.MaxDeadLetters as the transports that declared it, or delete the RabbitMQ objects first.",
                    error);
            }
            finally
            {
                await channel.DisposeAsync().ConfigureAwait(false);
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

    /// <summary>One connection and its publish channel. Closed once, whoever gets there first.</summary>
    private sealed class Link(IConnection connection, IChannel publish, int generation)
    {
        private readonly Lock _gate = new();
        private Task? _reopening;
        private int _closed;

        public IConnection Connection { get; } = connection;

        public IChannel Publish { get; private set; } = publish;

        public int Generation { get; } = generation;

        /// <summary>The connection is gone; set under the transport's link lock.</summary>
        public bool Lost { get; set; }

        /// <summary>Handed out as the transport's connection; set under the transport's link lock.</summary>
        public bool Established { get; set; }

        /// <summary>Replaces a publish channel that closed while the connection stayed up; one reopening at a time.</summary>
        public Task ReopenPublishAsync(IChannel closed, CancellationToken cancellationToken)
        {
            Task reopening;
            lock (_gate)
            {
                if (Publish != closed || Volatile.Read(ref _closed) != 0)
                {
                    return Task.CompletedTask;
                }

                reopening = _reopening ??= ReopenCoreAsync(closed);
            }

            return reopening.WaitAsync(cancellationToken);
        }

        private async Task ReopenCoreAsync(IChannel closed)
        {
            try
            {
                Publish = await OpenPublishChannelAsync(Connection, CancellationToken.None).ConfigureAwait(false);
                await closed.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                lock (_gate)
                {
                    _reopening = null;
                }
            }
        }

        public async Task CloseAsync()
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0)
            {
                return;
            }

            try
            {
                await Publish.CloseAsync().ConfigureAwait(false);
                await Connection.CloseAsync().ConfigureAwait(false);
            }
            catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or IOException or ObjectDisposedException)
            {
                // Lost before it was closed: there is nothing left to close.
            }

            await Publish.DisposeAsync().ConfigureAwait(false);
            await Connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
