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
        return _broker.PublishCoreAsync(queue, eventName, payload, options, cancellationToken);
    }

    /// <summary>Publishes if the queue has room now, without waiting.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="queue">The queue name.</param>
    /// <param name="eventName">The event name.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="receipt">The receipt, when the message was published.</param>
    /// <returns><see langword="false"/> when the queue is full under <see cref="OverflowPolicy.Wait"/> or <see cref="OverflowPolicy.Reject"/>.</returns>
    public bool TryPublish<T>(string queue, string eventName, T payload, out PublishReceipt receipt) =>
        TryPublish(queue, eventName, payload, default, out receipt);

    /// <summary>Publishes if the queue has room now, without waiting.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="queue">The queue name.</param>
    /// <param name="eventName">The event name.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="options">Headers for this publish; the timeout is ignored.</param>
    /// <param name="receipt">The receipt, when the message was published.</param>
    /// <returns><see langword="false"/> when the queue is full under <see cref="OverflowPolicy.Wait"/> or <see cref="OverflowPolicy.Reject"/>.</returns>
    public bool TryPublish<T>(string queue, string eventName, T payload, in PublishOptions options, out PublishReceipt receipt)
    {
        ThrowIfDisposed();
        return _broker.TryPublishCore(queue, eventName, payload, options, out receipt);
    }

    /// <inheritdoc/>
    public ValueTask<Subscription<T>> SubscribeAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _broker.SubscribeCoreAsync<T>(this, queue, filters, options, cancellationToken);
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
        return new ClientSnapshot { Id = Id, Name = Name, Subscriptions = subscriptions };
    }

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed))
        {
            throw new ObjectDisposedException(ToString(), $"Client '{Name}' was disposed; connect a new client.");
        }
    }
}
