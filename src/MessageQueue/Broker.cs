using System.Text.Json.Serialization.Metadata;
using MessageQueue.Persistence;

namespace MessageQueue;

/// <summary>
/// An in-process publish/subscribe message broker. It owns named queues, the clients connected to
/// it and their subscriptions. Create one per host and dispose it at shutdown.
/// </summary>
/// <remarks>
/// <para>The broker's own <see cref="PublishAsync{T}"/>, <see cref="TryPublish{T}(string, string, T, out PublishReceipt)"/>
/// and <see cref="SubscribeAsync{T}"/> act as a built-in client named <c>$broker</c>; use
/// <see cref="Connect"/> for a client with its own identity and lifetime.</para>
/// <para>Every member is thread-safe.</para>
/// </remarks>
public sealed partial class Broker : IPublisher, ISubscriber, IAsyncDisposable, IDisposable
{
    /// <summary>The name of the built-in client that the broker's own publish and subscribe methods use.</summary>
    internal const string BuiltInClientName = "$broker";

    private const int Running = 0;
    private const int Stopping = 1;

    private readonly BrokerOptions _options;

    // Copy-on-write: declaring a queue swaps in a new dictionary under _gate, so that a publish looks its
    // queue up without a lock. Queues are never removed.
    private Dictionary<string, BrokerQueue> _queues = new(StringComparer.Ordinal);

    // Guards declaring queues (so a queue and its dead-letter queue appear together), the client list
    // and the start of shutdown. Never taken on the publish or delivery path.
    private readonly Lock _gate = new();

    // Serializes declaring queues, which for a durable queue includes rebuilding it from the store.
    private readonly Lock _declareGate = new();

    // With a store: its group-commit writer, and what it held at start for queues not declared yet (under _gate).
    private readonly StoreWriter? _writer;
    private readonly Dictionary<string, StoredQueueState>? _stored;

    private Dictionary<string, BrokerQueue> Queues => Volatile.Read(ref _queues);

    private readonly BrokerMetrics _metrics;
    private readonly BrokerEvents _events;
    private readonly Microsoft.Extensions.Logging.ILogger _logger;
    private readonly Authorizer _authorizer;

    /// <summary>The options that limit what one client or one call may take (the broker's own copy).</summary>
    internal BrokerOptions Limits => _options;

    /// <summary>Client authorization (see <see cref="Authorizer"/>).</summary>
    internal Authorizer Authorization => _authorizer;

    /// <summary>The broker's logger (see <see cref="BrokerLog"/>).</summary>
    internal Microsoft.Extensions.Logging.ILogger Logger => _logger;
    private readonly List<BrokerClient> _clients = [];
    private readonly BrokerClient _builtIn;
    private long _lastClientId;
    private int _queueCount; // source queues, under _gate; dead-letter queues do not count
    private int _state;
    private Task? _disposal;
    private long _eventHandlerFailures;
    private string? _lastEventHandlerFailure;

    /// <summary>Creates a broker.</summary>
    /// <param name="options">The options; <see langword="null"/> for defaults. The values are copied.</param>
    /// <exception cref="ArgumentException">The options are invalid; the message lists every problem.</exception>
    public Broker(BrokerOptions? options = null)
    {
        options = options?.Clone() ?? new BrokerOptions();
        options.Validate(nameof(options));
        _options = options;
        _metrics = new BrokerMetrics(this, options.MeterFactory, options.TimeProvider, options.MaxMetricEventNames);
        _logger = options.LoggerFactory?.CreateLogger("MessageQueue") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _events = new BrokerEvents(this, options.Observer, _metrics, _logger);
        _authorizer = new Authorizer(options.AuthorizationRules, options.Authorizer, _events);
        if (options.Store is { } store)
        {
            // The broker owns its store: if reading it back fails, nobody else will close it.
            try
            {
                _stored = new Dictionary<string, StoredQueueState>(StringComparer.Ordinal);
                // A store that reads pages gives the queues without their messages: each durable queue reads back its own
                // when it is declared, no more than its memory window.
                foreach (StoredQueueState queue in store is IPagedMessageStore paged ? paged.LoadQueues() : store.Load())
                {
                    _stored[queue.Name] = queue;
                }
            }
            catch
            {
                store.Dispose();
                throw;
            }

            _writer = new StoreWriter(store, options.MaxStoreBatch, PostCursors);
        }

        _builtIn = new BrokerClient(this, ++_lastClientId, BuiltInClientName);
        _clients.Add(_builtIn);
        _events.Started(_stored?.Count ?? 0, options.Store?.GetType().Name);
    }

    /// <summary>
    /// Raised when a message is dropped: by a <see cref="OverflowPolicy.DropOldest"/> queue, or when a
    /// dead letter is rejected. Raised on the thread that caused the drop, after the broker has let go
    /// of its locks, so handlers may call back into the broker. An exception from a handler is caught and
    /// counted in <see cref="BrokerSnapshot.EventHandlerFailures"/>; it never fails the operation that
    /// caused the drop.
    /// </summary>
    public event EventHandler<MessageDroppedEventArgs>? MessageDropped;

    internal TimeProvider TimeProvider => _options.TimeProvider;

    /// <summary>The broker's instruments (see <see cref="BrokerMetrics"/>).</summary>
    internal BrokerMetrics Metrics => _metrics;

    /// <summary>Where everything that happens to a message is reported (see <see cref="BrokerEvents"/>).</summary>
    internal BrokerEvents Events => _events;

    /// <summary>Whether a queue of that name exists.</summary>
    internal bool HasQueue(string name) => Queues.ContainsKey(name);

    /// <summary>Whether <see cref="DisposeAsync"/> has begun.</summary>
    internal bool IsDisposed => Volatile.Read(ref _state) != Running;

    /// <summary>The observer of every message's life, or null (see <see cref="BrokerObserver"/>).</summary>
    internal BrokerObserver? Observer => _options.Observer;

    /// <summary>Returns the name of the dead-letter queue of <paramref name="queue"/>: <c>&lt;queue&gt;.$dlq</c>.</summary>
    /// <param name="queue">A queue name.</param>
    /// <returns>The dead-letter queue's name.</returns>
    /// <exception cref="ArgumentException"><paramref name="queue"/> is not a valid queue name.</exception>
    public static string GetDeadLetterQueueName(string queue)
    {
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: false);
        return queue + Names.DeadLetterSuffix;
    }

    /// <summary>
    /// Declares a queue of <typeparamref name="T"/> and its dead-letter queue. Declaring an existing queue
    /// again with the same type and options does nothing.
    /// </summary>
    /// <typeparam name="T">The payload type of every message in the queue. <see cref="object"/> is allowed.</typeparam>
    /// <param name="name">The queue name: 1 to 200 letters, digits, '-', '_' or '.', starting with a letter or digit.</param>
    /// <param name="options">The queue's options; <see langword="null"/> for defaults. The values are copied.</param>
    /// <exception cref="ArgumentException">The name or options are invalid.</exception>
    /// <exception cref="InvalidOperationException">The queue exists with another payload type or other options.</exception>
    /// <exception cref="ObjectDisposedException">The broker was disposed.</exception>
    public void DeclareQueue<T>(string name, QueueOptions? options = null) => DeclareQueue<T>(name, options, serializer: null);

    /// <summary>
    /// Declares a queue of <typeparamref name="T"/> whose payloads a durable queue stores with source-generated
    /// System.Text.Json metadata: safe for trimmed and native AOT applications.
    /// </summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="name">The queue name.</param>
    /// <param name="typeInfo">The JSON metadata for <typeparamref name="T"/>, from a <c>JsonSerializerContext</c>.</param>
    /// <param name="options">The queue's options; null for the defaults.</param>
    /// <exception cref="ArgumentException">The name or the options are not valid.</exception>
    /// <exception cref="InvalidOperationException">The queue exists with another payload type or other options.</exception>
    /// <exception cref="MessageStoreException">The queue is durable and a stored payload cannot be read as <typeparamref name="T"/>.</exception>
    public void DeclareQueue<T>(string name, JsonTypeInfo<T> typeInfo, QueueOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        DeclareQueue(name, options, PayloadSerializer<T>.For(typeInfo));
    }

    /// <summary>Declares a queue of <typeparamref name="T"/> whose payloads a durable queue stores with <paramref name="serializer"/>.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="name">The queue name.</param>
    /// <param name="serializer">Turns payloads into bytes and back; it must read bytes only as <typeparamref name="T"/>.</param>
    /// <param name="options">The queue's options; null for the defaults.</param>
    /// <exception cref="ArgumentException">The name or the options are not valid.</exception>
    /// <exception cref="InvalidOperationException">The queue exists with another payload type or other options.</exception>
    /// <exception cref="MessageStoreException">The queue is durable and a stored payload cannot be read.</exception>
    public void DeclareQueue<T>(string name, IPayloadSerializer<T> serializer, QueueOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        DeclareQueue(name, options, serializer);
    }

    private void DeclareQueue<T>(string name, QueueOptions? options, IPayloadSerializer<T>? serializer)
    {
        ThrowIfDisposed();
        Names.ValidateQueueName(name, nameof(name), allowDeadLetter: false);
        QueueOptions copy = options?.Clone() ?? new QueueOptions();
        copy.Validate(nameof(options));
        BrokerQueue queue = GetOrDeclare(name, copy, serializer);
        if (queue.PayloadType != typeof(T) || !queue.Options.SameAs(copy))
        {
            throw new InvalidOperationException(
                $"Queue '{name}' is already declared as a queue of {queue.PayloadType.Name} with {queue.Options}; " +
                $"it cannot be declared again as a queue of {typeof(T).Name} with {copy}. Declare it once, before first use, or use another name.");
        }

        // Declared by name now, so not a typo: no warning when a message routes nowhere there.
        queue.AutoDeclared = false;
    }

    /// <summary>Connects a client with a name, for identity in snapshots and, later, authorization.</summary>
    /// <param name="name">The client's name. Several clients may share one.</param>
    /// <returns>The client. Dispose it to detach everything it subscribed.</returns>
    /// <exception cref="ArgumentException">The name is empty, too long, or starts with '$'.</exception>
    /// <exception cref="ObjectDisposedException">The broker was disposed.</exception>
    public BrokerClient Connect(string name)
    {
        Names.ValidateClientName(name, nameof(name));
        lock (_gate)
        {
            ThrowIfDisposed();
            var client = new BrokerClient(this, ++_lastClientId, name);
            _clients.Add(client);
            return client;
        }
    }

    /// <summary>
    /// Deletes a durable subscription and the messages it was holding. The subscription must have no
    /// consumers attached.
    /// </summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="name">The durable subscription's name.</param>
    /// <param name="cancellationToken">A token that cancels the call.</param>
    /// <returns><see langword="true"/> when the subscription existed and was deleted.</returns>
    /// <exception cref="QueueNotFoundException">The queue does not exist.</exception>
    /// <exception cref="InvalidOperationException">Consumers are still attached.</exception>
    public ValueTask<bool> DeleteSubscriptionAsync(string queue, string name, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(name);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        if (!Queues.TryGetValue(queue, out BrokerQueue? found))
        {
            Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
            throw NotFound(queue);
        }

        bool deleted = found.DeleteSubscription(name);
        return _writer is null || !deleted ? new ValueTask<bool>(deleted) : DeletedAfterCommitAsync();
    }

    private async ValueTask<bool> DeletedAfterCommitAsync()
    {
        await _writer!.FlushAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Waits until the store has committed everything the broker gave it so far: publishes, and also acks,
    /// nacks and the other settlements, which are otherwise committed with the next batch without anyone
    /// waiting. Completes at once without a store.
    /// </summary>
    /// <param name="cancellationToken">Stops the wait (not the commit).</param>
    /// <returns>A task that completes after the commit.</returns>
    /// <exception cref="MessageStoreException">The store failed; what was not committed is not stored.</exception>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_writer is null)
        {
            return cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled(cancellationToken) : default;
        }

        ValueTask flush = _writer.FlushAsync();
        return flush.IsCompleted || !cancellationToken.CanBeCanceled ? flush : new ValueTask(flush.AsTask().WaitAsync(cancellationToken));
    }

    /// <summary>On the store's writer thread, before each batch.</summary>
    private void PostCursors()
    {
        foreach (BrokerQueue queue in Queues.Values)
        {
            queue.PostCursors();
        }
    }

    /// <summary>
    /// Stops the broker as <see cref="DisposeAsync"/> does, blocking the calling thread until that completes. Prefer
    /// <see cref="DisposeAsync"/>; this is for callers that can only dispose synchronously, such as a service
    /// provider disposed with <c>using</c> rather than <c>await using</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from a callback that runs on the store's writer thread (a
    /// <see cref="MessageDropped"/> handler, a metrics listener): blocking there would wait for that very thread. Use
    /// <see cref="DisposeAsync"/> there, without waiting for it.</exception>
    public void Dispose()
    {
        if (StoreWriter.OnWriterThread)
        {
            throw new InvalidOperationException(
                "Dispose was called on the store's writer thread (from a MessageDropped handler or a metrics listener), and would wait for that thread forever. Call DisposeAsync there without waiting for it, or dispose the broker elsewhere.");
        }

        DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>
    /// Stops the broker. New publishes and subscribes fail at once with <see cref="ObjectDisposedException"/>,
    /// and publishers waiting for room are released with it. Consumers get no new deliveries; those
    /// they have not read yet go back to their subscriptions, and the broker waits up to
    /// <see cref="BrokerOptions.ShutdownTimeout"/> (on its clock or on the real clock, whichever passes it first) for
    /// them to settle what they did read. Then every
    /// consumer is detached, what is still unsettled goes back to its durable subscription, and each
    /// subscription's <see cref="Subscription.Completion"/> faults with <see cref="SubscriptionClosedException"/>
    /// (<see cref="SubscriptionCloseReason.BrokerDisposed"/>); its reads end as on a completed channel (see
    /// <see cref="Subscription{T}"/>). Calling this again returns the same task.
    /// </summary>
    /// <returns>A task that completes when the broker has stopped.</returns>
    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _disposal ??= DisposeCoreAsync();
            return new ValueTask(_disposal);
        }
    }

    private async Task DisposeCoreAsync()
    {
        Volatile.Write(ref _state, Stopping);
        foreach (BrokerQueue queue in Queues.Values)
        {
            queue.Close();
        }

        BrokerClient[] clients;
        lock (_gate)
        {
            clients = [.. _clients];
        }

        var consumers = new List<IConsumer>();
        foreach (BrokerClient client in clients)
        {
            consumers.AddRange(client.GetConsumers());
        }

        // Stop every consumer before taking anything back, so that returned messages are not handed
        // to a neighbour that is about to stop too.
        foreach (IConsumer consumer in consumers)
        {
            consumer.StopDelivering();
        }

        foreach (IConsumer consumer in consumers)
        {
            consumer.TakeBackUnread();
        }

        // A handler that disposes the broker is waiting for this very call: its own delivery cannot be
        // settled before it returns, so it is not waited for (it goes back to its subscription below).
        IConsumer? caller = HandlerScope.Current?.Consumer;
        var drained = new List<Task>(consumers.Count);
        foreach (IConsumer consumer in consumers)
        {
            if (consumer != caller)
            {
                drained.Add(consumer.WhenDrained());
            }
        }

        // Drained, or out of time: what is still unsettled goes back to its subscription below.
        await DrainAsync(Task.WhenAll(drained)).ConfigureAwait(false);

        int unsettled = 0;
        foreach (IConsumer consumer in consumers)
        {
            unsettled += consumer.GetSnapshot().InFlight;
            consumer.Detach(consumer.CreateClosedException(SubscriptionCloseReason.BrokerDisposed, "The broker was disposed; unsettled messages went back to their durable subscriptions."));
        }

        int queues = 0;
        foreach (BrokerQueue queue in Queues.Values)
        {
            queues += queue.IsDeadLetterQueue ? 0 : 1;
        }

        _events.Stopped(queues, consumers.Count, unsettled);

        if (_writer is not null)
        {
            // What the detaches above returned (deliveries counted) is committed before the store closes.
            try
            {
                await _writer.FlushAsync().ConfigureAwait(false);
            }
            catch (MessageStoreException)
            {
                // Failed earlier; publishers were told. Nothing more can be stored.
            }

            _writer.Dispose();
            _options.Store!.Dispose();
        }

        _metrics.Dispose();
    }

    /// <summary>
    /// Waits for the consumers to settle what they read, until <see cref="BrokerOptions.ShutdownTimeout"/> has passed on
    /// the broker's clock or on the real clock, whichever is first. The broker's clock alone would make a broker on a
    /// manual clock that nobody moves (a test's, say) wait forever for a delivery that nobody settles; the real clock
    /// alone would make a test that moves its clock wait out the deadline in real time.
    /// </summary>
    private async Task DrainAsync(Task drained)
    {
        TimeSpan timeout = _options.ShutdownTimeout;
        if (drained.IsCompleted || timeout == Timeout.InfiniteTimeSpan)
        {
            await drained.ConfigureAwait(false);
            return;
        }

        TimeProvider clock = _options.TimeProvider;
        using var stop = new CancellationTokenSource();
        Task onClock = Task.Delay(timeout, clock, stop.Token);
        Task onRealTime = ReferenceEquals(clock, TimeProvider.System) ? onClock : Task.Delay(timeout, TimeProvider.System, stop.Token);
        await Task.WhenAny(drained, onClock, onRealTime).ConfigureAwait(false);

        // Whichever ended the wait, the timers still armed are not needed any more.
        stop.Cancel();
    }

    internal void Forget(BrokerClient client)
    {
        lock (_gate)
        {
            _clients.Remove(client);
        }
    }

    internal ObjectDisposedException CreateDisposedException() =>
        new(nameof(Broker), "The broker was disposed; create a new broker to publish or subscribe.");

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _state) != Running)
        {
            throw CreateDisposedException();
        }
    }

    /// <summary>
    /// Raises <see cref="MessageDropped"/> for each drop (counted and logged by <see cref="BrokerEvents"/> before). Handlers are
    /// user code: on the store's writer thread they are moved to the thread pool, since one that waited for a durable
    /// publish would wait for that very thread.
    /// </summary>
    internal void RaiseMessageDropped(List<MessageDroppedEventArgs> dropped)
    {
        EventHandler<MessageDroppedEventArgs>? handler = MessageDropped;
        if (handler is null)
        {
            return;
        }

        if (StoreWriter.OnWriterThread)
        {
            ThreadPool.QueueUserWorkItem(static state => state.Broker.RaiseMessageDropped(state.Dropped), (Broker: this, Dropped: dropped), preferLocal: false);
            return;
        }

        foreach (MessageDroppedEventArgs args in dropped)
        {
            foreach (EventHandler<MessageDroppedEventArgs> single in handler.GetInvocationList().Cast<EventHandler<MessageDroppedEventArgs>>())
            {
                try
                {
                    single(this, args);
                }
#pragma warning disable CA1031 // A subscriber's exception must not fail the publish that caused the drop.
                catch (Exception exception)
#pragma warning restore CA1031
                {
                    Volatile.Write(ref _lastEventHandlerFailure, $"{exception.GetType().FullName}: {exception.Message}");
                    Interlocked.Increment(ref _eventHandlerFailures);
                }
            }
        }
    }
}
