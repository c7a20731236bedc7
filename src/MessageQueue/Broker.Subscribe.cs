using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using MessageQueue.Persistence;

namespace MessageQueue;

public sealed partial class Broker
{
    /// <inheritdoc/>
    public ValueTask<Subscription<T>> SubscribeAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options = null, CancellationToken cancellationToken = default) =>
        SubscribeCoreAsync<T>(_builtIn, queue, filters, options, cancellationToken);

    internal ValueTask<Subscription<T>> SubscribeCoreAsync<T>(BrokerClient client, string queue, IEnumerable<string> filters, SubscriptionOptions? options, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
        ArgumentNullException.ThrowIfNull(filters);
        string[] filterList = [.. filters];
        if (filterList.Length == 0)
        {
            throw new ArgumentException("No filters were given; pass at least one event name or filter, or '#' for every event.", nameof(filters));
        }

        foreach (string filter in filterList)
        {
            Names.ValidateFilter(filter, nameof(filters));
        }

        options = options?.Clone() ?? SubscriptionOptions.Default;
        options.Validate(nameof(options));
        if (!ReferenceEquals(client, _builtIn) && client.SubscriptionCount >= _options.MaxSubscriptionsPerClient)
        {
            throw new InvalidOperationException(
                $"Client '{client.Name}' holds {client.SubscriptionCount} subscriptions, the most BrokerOptions.MaxSubscriptionsPerClient allows ({_options.MaxSubscriptionsPerClient}). Dispose subscriptions it no longer needs, or raise the limit.");
        }
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<Subscription<T>>(cancellationToken);
        }

        if (!Queues.TryGetValue(queue, out BrokerQueue? target))
        {
            target = GetOrAutoDeclare<T>(queue);
        }

        if (target is not BrokerQueue<T> typed)
        {
            throw new ArgumentException(
                $"Queue '{queue}' carries payloads of type {target.PayloadType.FullName}; subscribe with SubscribeAsync<{target.PayloadType.Name}>, not SubscribeAsync<{typeof(T).Name}>.",
                nameof(queue));
        }

        Consumer<T> consumer = typed.Subscribe(client, filterList, options, out long storeTicket);
        client.Track(consumer);

        // A shutdown that began after the checks above may have collected the consumers before this
        // one was tracked. Tracking, then a full fence, then reading the state pairs with DisposeAsync
        // writing the state before collecting: one of the two sees the other.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _state) != Running)
        {
            consumer.Detach(CreateDisposedException());
            throw CreateDisposedException();
        }

        return storeTicket == 0 ? new ValueTask<Subscription<T>>(consumer) : SubscribeStoredAsync(consumer, storeTicket);
    }

    /// <summary>A new durable subscription of a durable queue returns once the store has it, so that it outlives a crash.</summary>
    private async ValueTask<Subscription<T>> SubscribeStoredAsync<T>(Consumer<T> consumer, long storeTicket)
    {
        try
        {
            await _writer!.WaitForCommitAsync(storeTicket).ConfigureAwait(false);
        }
        catch (MessageStoreException exception)
        {
            consumer.Detach(exception);
            throw;
        }

        return consumer;
    }

    /// <summary>
    /// Finds or, when <see cref="BrokerOptions.AutoDeclareQueues"/> allows, declares a queue on first use.
    /// A dead-letter queue name declares its source queue.
    /// </summary>
    private BrokerQueue GetOrAutoDeclare<T>(string queue)
    {
        string source = queue.EndsWith(Names.DeadLetterSuffix, StringComparison.Ordinal) ? queue[..^Names.DeadLetterSuffix.Length] : queue;
        if (!_options.AutoDeclareQueues && !Queues.ContainsKey(source))
        {
            throw NotFound(queue);
        }

        GetOrDeclare<T>(source, new QueueOptions(), autoDeclared: true);
        return Queues.TryGetValue(queue, out BrokerQueue? found)
            ? found
            : throw new QueueNotFoundException(
                queue,
                $"Queue '{source}' has no dead-letter queue: it was declared with QueueOptions.DeadLetters off. Declare it with dead letters on to subscribe to '{queue}'.",
                null);
    }

    private static QueueNotFoundException NotFound(string queue) => new(
        queue,
        $"Queue '{queue}' does not exist. Declare it with DeclareQueue<T>(\"{queue}\") first, or set BrokerOptions.AutoDeclareQueues to declare queues on first use.",
        null);

    /// <summary>Returns the queue called <paramref name="name"/>, declaring it and its dead-letter queue if needed.</summary>
    /// <remarks>
    /// A durable queue is rebuilt from the store before anyone can see it. That reads payloads (the serializer
    /// may run user converters) under <see cref="_declareGate"/>, which only declaring takes, never a publish,
    /// a delivery or a settlement.
    /// </remarks>
    private BrokerQueue GetOrDeclare<T>(string name, QueueOptions options, IPayloadSerializer<T>? serializer = null, bool autoDeclared = false)
    {
        lock (_declareGate)
        {
            return DeclareCore(name, options, serializer, autoDeclared);
        }
    }

    private BrokerQueue DeclareCore<T>(string name, QueueOptions options, IPayloadSerializer<T>? serializer, bool autoDeclared)
    {
        ThrowIfDisposed();
        if (Queues.TryGetValue(name, out BrokerQueue? existing))
        {
            return existing;
        }

        if (_queueCount >= _options.MaxQueues)
        {
            throw new InvalidOperationException(
                $"The broker already holds {_options.MaxQueues} queues (BrokerOptions.MaxQueues), so queue '{name}' was not declared. " +
                "Reuse a queue and tell messages apart by event name, or raise MaxQueues.");
        }

        Durability durability = options.Durability ?? _options.DefaultDurability;
        if (durability != Durability.InMemory && _writer is null)
        {
            throw new ArgumentException(
                $"Queue '{name}' is declared with Durability.{durability}, but the broker has no store to keep it in. Set BrokerOptions.Store (for example a SqliteMessageStore), or declare the queue with Durability.InMemory.",
                nameof(options));
        }

        QueueStore<T>? store = durability == Durability.InMemory ? null : new QueueStore<T>(_writer!, durability, serializer ?? DefaultSerializer<T>());
        BrokerQueue<T>? deadLetters = options.DeadLetters
            ? new BrokerQueue<T>(
                this,
                name + Names.DeadLetterSuffix,
                new QueueOptions { MaxMessages = options.MaxMessages, Overflow = OverflowPolicy.DropOldest, Retention = RetentionPolicy.Limits, PublishTimeout = options.PublishTimeout, DeadLetters = false },
                isDeadLetterQueue: true,
                store)
            : null;
        var queue = new BrokerQueue<T>(this, name, options, isDeadLetterQueue: false, store) { DeadLetterQueue = deadLetters, AutoDeclared = autoDeclared };
        if (store is not null)
        {
            if (_stored?.GetValueOrDefault(name) is { } stored)
            {
                queue.Recover(stored);
            }

            if (deadLetters is not null && _stored?.GetValueOrDefault(deadLetters.Name) is { } storedDeadLetters)
            {
                deadLetters.Recover(storedDeadLetters);
            }
        }

        // The queue and its dead-letter queue become visible together, in one swap.
        lock (_gate)
        {
            ThrowIfDisposed();
            var queues = new Dictionary<string, BrokerQueue>(_queues, StringComparer.Ordinal);
            if (deadLetters is not null)
            {
                queues[deadLetters.Name] = deadLetters;
                _stored?.Remove(deadLetters.Name);
            }

            queues[name] = queue;
            _stored?.Remove(name);
            Volatile.Write(ref _queues, queues);
            _queueCount++;
        }

        return queue;
    }

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Queues declared without a JsonTypeInfo use reflection-based JSON by design; the README says to pass a JsonTypeInfo in trimmed or AOT applications.")]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "As above.")]
    private PayloadSerializer<T> DefaultSerializer<T>() => PayloadSerializer<T>.For(_options.JsonSerializerOptions ?? JsonSerializerOptions.Default);
}
