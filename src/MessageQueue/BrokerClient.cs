namespace MessageQueue;

/// <summary>
/// A connected party with a name, created by <see cref="Broker.Connect"/>. It publishes and
/// subscribes like the broker does, and owns the subscriptions it creates: disposing the client
/// detaches them all.
/// </summary>
public sealed class BrokerClient : IPublisher, ISubscriber, IAsyncDisposable
{
    private readonly Broker _broker;
    private readonly Lock _gate = new();
    private readonly HashSet<IConsumer> _consumers = [];

    // Handler-form subscriptions, so that disposing the client waits for their running handlers.
    private readonly HashSet<Subscription> _handlers = [];
    private bool _disposed;

    internal BrokerClient(Broker broker, long id, string name)
    {
        _broker = broker;
        Id = id;
        Name = name;
    }

    /// <summary>Gets the id the broker gave this connection, unique for the broker's lifetime.</summary>
    public long Id { get; }

    /// <summary>Gets the name the client connected with. Several clients may share a name.</summary>
    public string Name { get; }

    /// <inheritdoc/>
    public ValueTask<PublishReceipt> PublishAsync<T>(string queue, string eventName, T payload, PublishOptions options = default, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        if (_broker.Authorization.IsActive)
        {
            Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
            Names.ValidateEvent(eventName, nameof(eventName));
            MessageRules.ThrowIfNullPayload(payload, queue, eventName);
            ValueTask check = _broker.Authorization.CheckAsync(this, BrokerOperation.Publish, queue, eventName, cancellationToken);
            if (!check.IsCompletedSuccessfully)
            {
                return PublishAfterCheckAsync(check, queue, eventName, payload, options, cancellationToken);
            }
        }

        return _broker.PublishCoreAsync(queue, eventName, payload, options, cancellationToken);
    }

    private async ValueTask<PublishReceipt> PublishAfterCheckAsync<T>(ValueTask check, string queue, string eventName, T payload, PublishOptions options, CancellationToken cancellationToken)
    {
        await check.ConfigureAwait(false);
        return await _broker.PublishCoreAsync(queue, eventName, payload, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Publishes if the queue has room now, without waiting.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="queue">The queue name.</param>
    /// <param name="eventName">The event name.</param>
    /// <param name="payload">The payload; not <see langword="null"/> (for an event with no data, publish an empty record).</param>
    /// <param name="receipt">The receipt, when the message was published.</param>
    /// <returns>
    /// <see langword="false"/> when the queue is full under <see cref="OverflowPolicy.Wait"/> or <see cref="OverflowPolicy.Reject"/>,
    /// and always on a durable queue, whose publish completes only after a commit: use <see cref="PublishAsync{T}"/> there.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="queue"/>, <paramref name="eventName"/> or <paramref name="payload"/> is null.</exception>
    public bool TryPublish<T>(string queue, string eventName, T payload, out PublishReceipt receipt) =>
        TryPublish(queue, eventName, payload, default, out receipt);

    /// <summary>Publishes if the queue has room now, without waiting.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="queue">The queue name.</param>
    /// <param name="eventName">The event name.</param>
    /// <param name="payload">The payload; not <see langword="null"/> (for an event with no data, publish an empty record).</param>
    /// <param name="options">Headers for this publish; the timeout is ignored.</param>
    /// <param name="receipt">The receipt, when the message was published.</param>
    /// <returns>
    /// <see langword="false"/> when the queue is full under <see cref="OverflowPolicy.Wait"/> or <see cref="OverflowPolicy.Reject"/>,
    /// and always on a durable queue, whose publish completes only after a commit: use <see cref="PublishAsync{T}"/> there.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="queue"/>, <paramref name="eventName"/> or <paramref name="payload"/> is null.</exception>
    public bool TryPublish<T>(string queue, string eventName, T payload, in PublishOptions options, out PublishReceipt receipt)
    {
        ThrowIfDisposed();
        if (_broker.Authorization.IsActive)
        {
            Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
            Names.ValidateEvent(eventName, nameof(eventName));
            MessageRules.ThrowIfNullPayload(payload, queue, eventName);
            ValueTask check = _broker.Authorization.CheckAsync(this, BrokerOperation.Publish, queue, eventName, CancellationToken.None);
            if (!check.IsCompleted)
            {
                // Observed, so that a later failure is not unobserved; this call cannot wait for it.
                _ = check.AsTask().ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                throw new InvalidOperationException(
                    $"TryPublish cannot wait for the custom authorizer (BrokerOptions.Authorizer) to decide whether client '{Name}' may publish '{eventName}' on queue '{queue}'; use PublishAsync, or let the authorizer's decisions be cached.");
            }

            check.GetAwaiter().GetResult();
        }

        return _broker.TryPublishCore(queue, eventName, payload, options, out receipt);
    }

    /// <inheritdoc/>
    public ValueTask<Subscription<T>> SubscribeAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _broker.Authorization.IsActive
            ? SubscribeAfterCheckAsync<T>(queue, filters, options, cancellationToken)
            : _broker.SubscribeCoreAsync<T>(this, queue, filters, options, cancellationToken);
    }

    private async ValueTask<Subscription<T>> SubscribeAfterCheckAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options, CancellationToken cancellationToken)
    {
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
        ArgumentNullException.ThrowIfNull(filters);
        string[] checkedFilters = [.. filters];
        foreach (string filter in checkedFilters)
        {
            Names.ValidateFilter(filter, nameof(filters));
            await _broker.Authorization.CheckAsync(this, BrokerOperation.Subscribe, queue, filter, cancellationToken).ConfigureAwait(false);
        }

        return await _broker.SubscribeCoreAsync<T>(this, queue, checkedFilters, options, cancellationToken).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- authorization cache

    // Read without a lock: threads publishing through one client do not queue up behind each other here.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(BrokerOperation, string, string), string?> _decisions = new();
    private int _decisionCount;

    /// <summary>A remembered decision: true with <paramref name="denied"/> null when allowed, or the reason it was denied.</summary>
    internal bool TryGetDecision(BrokerOperation operation, string queue, string eventOrFilter, out string? denied) =>
        _decisions.TryGetValue((operation, queue, eventOrFilter), out denied);

    /// <summary>Remembers a decision, up to <see cref="Authorizer.MaxCachedPerClient"/> of them.</summary>
    internal void RememberDecision(BrokerOperation operation, string queue, string eventOrFilter, string? denied)
    {
        if (Volatile.Read(ref _decisionCount) < Authorizer.MaxCachedPerClient && _decisions.TryAdd((operation, queue, eventOrFilter), denied))
        {
            Interlocked.Increment(ref _decisionCount);
        }
    }

    /// <summary>
    /// Detaches every subscription this client owns. Handler-form subscriptions are stopped first: their
    /// handlers' cancellation tokens are cancelled and the call waits for running handlers to return.
    /// Calling it again does nothing.
    /// </summary>
    /// <returns>A task that completes when the subscriptions are detached.</returns>
    public async ValueTask DisposeAsync()
    {
        Subscription[] handlers;
        IConsumer[] consumers;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            handlers = [.. _handlers];
            _handlers.Clear();
        }

        foreach (Subscription handler in handlers)
        {
            await handler.DisposeAsync().ConfigureAwait(false);
        }

        lock (_gate)
        {
            consumers = [.. _consumers];
        }

        foreach (IConsumer consumer in consumers)
        {
            consumer.Detach(fault: null);
        }

        _broker.Forget(this);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} (#{Id})";

    /// <summary>How many subscriptions (consumers) the client holds now.</summary>
    internal int SubscriptionCount
    {
        get
        {
            lock (_gate)
            {
                return _consumers.Count;
            }
        }
    }

    internal void Track(IConsumer consumer)
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _consumers.Add(consumer);
                return;
            }
        }

        // Disposed while the subscribe was in progress: the new consumer must not outlive its owner.
        consumer.Detach(fault: null);
        throw new ObjectDisposedException(ToString(), $"Client '{Name}' was disposed; connect a new client to subscribe.");
    }

    /// <summary>Tracks a handler-form subscription built on one of this client's consumers.</summary>
    /// <returns>False when the client is already disposed; the caller then disposes the handler itself.</returns>
    internal bool TrackHandler(Subscription handler)
    {
        lock (_gate)
        {
            return !_disposed && _handlers.Add(handler);
        }
    }

    internal void ForgetHandler(Subscription handler)
    {
        lock (_gate)
        {
            _handlers.Remove(handler);
        }
    }

    internal void Forget(IConsumer consumer)
    {
        lock (_gate)
        {
            _consumers.Remove(consumer);
        }
    }

    internal IConsumer[] GetConsumers()
    {
        lock (_gate)
        {
            return [.. _consumers];
        }
    }

    internal ClientSnapshot GetSnapshot()
    {
        IConsumer[] consumers = GetConsumers();
        var subscriptions = new List<ConsumerSnapshot>(consumers.Length);
        foreach (IConsumer consumer in consumers)
        {
            subscriptions.Add(consumer.GetSnapshot());
        }

        subscriptions.Sort(static (a, b) => string.CompareOrdinal(a.Queue, b.Queue));
        return new ClientSnapshot { Id = Id, Name = Name, Consumers = subscriptions };
    }

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed))
        {
            throw new ObjectDisposedException(ToString(), $"Client '{Name}' was disposed; connect a new client.");
        }
    }
}
