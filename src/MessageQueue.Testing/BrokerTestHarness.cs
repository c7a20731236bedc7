using System.Globalization;
using System.Text;

namespace MessageQueue.Testing;

/// <summary>
/// A real <see cref="MessageQueue.Broker"/> on a manual clock, which records what happens to every message and knows,
/// by counting, when every published message has been settled by every subscription that took it.
/// </summary>
/// <remarks>
/// <para>
/// Nothing here is decided by an inactivity timer. <see cref="WaitForIdleAsync"/> completes when the count of
/// deliveries owed to subscriptions reaches zero, at the instant it does; it cannot finish early on a slow machine,
/// and it does not wait a moment longer than the work takes. Its timeout (<see cref="BrokerTestHarnessOptions.IdleTimeout"/>,
/// in real time) only turns a test that would hang into a failure that says what is pending where.
/// </para>
/// <para>
/// Time is the harness's: <see cref="Time"/> is the broker's clock, and only <see cref="AdvanceTimeAsync"/> (or
/// <see cref="ManualTimeProvider.Advance"/>) moves it, so ack timeouts, retry delays, delayed deliveries and time to live
/// run deterministically.
/// </para>
/// <para>Instances share nothing: run as many at once as you like.</para>
/// </remarks>
/// <example>
/// <code>
/// await using var harness = new BrokerTestHarness();
/// harness.Broker.DeclareQueue&lt;Order&gt;("orders");
/// await using Subscription subscription = await harness.SubscribeAsync&lt;Order&gt;("orders", "order.*", HandleAsync);
///
/// await harness.PublishAsync("orders", "order.created", new Order(1));
/// await harness.WaitForIdleAsync();
///
/// harness.Acked.ForEvent("order.created").Count.Should().Be(1);
/// </code>
/// </example>
public sealed class BrokerTestHarness : IPublisher, ISubscriber, IAsyncDisposable, IDisposable
{
    private const int MaxClockSteps = 100_000;
    private readonly HarnessObserver _observer;
    private readonly TimeSpan _idleTimeout;
    private readonly DateTimeOffset _start;
    private readonly bool _ownsBroker;

    /// <summary>Initializes a harness with a new broker of its own, which it disposes.</summary>
    /// <param name="options">The options; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentException">The options are invalid (for example, they set a clock of their own); the message says which and why.</exception>
    public BrokerTestHarness(BrokerTestHarnessOptions? options = null)
    {
        options ??= new BrokerTestHarnessOptions();
        options.Validate();
        Time = new ManualTimeProvider(options.StartTime);
        _observer = new HarnessObserver(Time);
        BrokerOptions brokerOptions = options.Broker?.Clone() ?? new BrokerOptions();
        brokerOptions.TimeProvider = Time;
        brokerOptions.Observer = _observer;

        // A test ends when it ends: disposing does not wait on a clock that only the test moves.
        brokerOptions.ShutdownTimeout = TimeSpan.Zero;
        Broker = new Broker(brokerOptions);
        Broker.MessageDropped += OnMessageDropped;
        _idleTimeout = options.IdleTimeout;
        _start = options.StartTime.ToUniversalTime();
        _ownsBroker = true;
    }

    /// <summary>A harness over a broker that a container created with this observer and clock (AddMessageBrokerTestHarness).</summary>
    internal BrokerTestHarness(Broker broker, ManualTimeProvider time, HarnessObserver observer, BrokerTestHarnessOptions options)
    {
        Time = time;
        _observer = observer;
        Broker = broker;
        Broker.MessageDropped += OnMessageDropped;
        _idleTimeout = options.IdleTimeout;
        _start = options.StartTime.ToUniversalTime();
        _ownsBroker = false;
    }

    /// <summary>Gets the broker: declare queues, take snapshots, replay dead letters, connect clients.</summary>
    public Broker Broker { get; }

    /// <summary>Gets the broker's clock. Give it to your own time-based code too.</summary>
    public ManualTimeProvider Time { get; }

    /// <summary>Gets every record so far, in the order things happened.</summary>
    public MessageRecords Records => new(_observer.Snapshot());

    /// <summary>Gets the messages that entered a queue (dead letters are in <see cref="DeadLettered"/> instead).</summary>
    public MessageRecords Published => Records.OfKind(MessageRecordKind.Published);

    /// <summary>Gets the deliveries consumers read.</summary>
    public MessageRecords Delivered => Records.OfKind(MessageRecordKind.Delivered);

    /// <summary>Gets the deliveries that were acked.</summary>
    public MessageRecords Acked => Records.OfKind(MessageRecordKind.Acked);

    /// <summary>Gets the deliveries that were nacked, with their <see cref="MessageRecord.Delay"/>.</summary>
    public MessageRecords Nacked => Records.OfKind(MessageRecordKind.Nacked);

    /// <summary>Gets the deliveries that were rejected.</summary>
    public MessageRecords Rejected => Records.OfKind(MessageRecordKind.Rejected);

    /// <summary>Gets the deliveries that ran past their ack timeout.</summary>
    public MessageRecords TimedOut => Records.OfKind(MessageRecordKind.TimedOut);

    /// <summary>Gets the messages that went to a dead-letter queue, with their reason.</summary>
    public MessageRecords DeadLettered => Records.OfKind(MessageRecordKind.DeadLettered);

    /// <summary>Gets the messages that were dropped, with their reason.</summary>
    public MessageRecords Dropped => Records.OfKind(MessageRecordKind.Dropped);

    /// <inheritdoc/>
    public ValueTask<PublishReceipt> PublishAsync<T>(string queue, string eventName, T payload, PublishOptions options = default, CancellationToken cancellationToken = default) =>
        Broker.PublishAsync(queue, eventName, payload, options, cancellationToken);

    /// <inheritdoc/>
    public ValueTask<Subscription<T>> SubscribeAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options = null, CancellationToken cancellationToken = default) =>
        Broker.SubscribeAsync<T>(queue, filters, options, cancellationToken);

    /// <summary>
    /// Completes when every message published so far has been settled (acked, rejected, dead-lettered, expired or dropped)
    /// by every subscription that took it, and no message is held for delayed delivery. Decided by counts.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the broker is idle.</returns>
    /// <exception cref="InvalidOperationException">
    /// At once, when what is left can only move when the clock does (a retry delay, a delayed delivery) or when a
    /// consumer attaches (the backlog of a durable subscription with none): the message says what is pending where,
    /// and to call <see cref="AdvanceTimeAsync"/>.
    /// </exception>
    /// <exception cref="TimeoutException">The broker was not idle within <see cref="BrokerTestHarnessOptions.IdleTimeout"/>; the message lists what is pending where, and since when.</exception>
    public Task WaitForIdleAsync(CancellationToken cancellationToken = default) =>
        WaitAsync(static (_, counts, _) => counts.IsIdle, "idle", failWhenQuiet: true, cancellationToken);

    /// <summary>
    /// Completes when <paramref name="condition"/> holds, checked now and again after every recorded step (never on a
    /// timer). For example <c>h =&gt; h.Nacked.Count == 1</c>.
    /// </summary>
    /// <param name="condition">The condition; it runs on the waiting thread, never under a broker lock.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the condition holds.</returns>
    /// <exception cref="TimeoutException">The condition did not hold within <see cref="BrokerTestHarnessOptions.IdleTimeout"/>; the message lists what is pending where.</exception>
    public Task WaitUntilAsync(Func<BrokerTestHarness, bool> condition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return WaitAsync((harness, _, _) => condition(harness), "the condition", failWhenQuiet: false, cancellationToken);
    }

    /// <summary>
    /// Moves the clock forward by <paramref name="delta"/>, one due timer at a time, and lets the broker and its consumers
    /// finish what each step set off before taking the next. A retry schedule of 1 s, 5 s and 30 s runs, in order, within
    /// one <c>AdvanceTimeAsync(TimeSpan.FromSeconds(40))</c>. Before the first step, and after the last, it waits until
    /// nothing can move without the clock: every delivery is settled, waiting out a retry delay, or in the backlog of a
    /// durable subscription that has no consumer.
    /// </summary>
    /// <remarks>
    /// <para>It is made for handlers: handler-form subscriptions (<c>SubscribeAsync(…, handler)</c>) and hosted handlers.
    /// A delivery waiting in a subscription that your test reads itself (<see cref="Subscription{T}.ReadAsync"/>) keeps it
    /// waiting, since only your test can read it; with such a subscription, move the clock with
    /// <see cref="ManualTimeProvider.Advance"/>.</para>
    /// <para>A handler that is still running keeps the harness waiting before the clock moves. To time out such a handler
    /// (an ack timeout, a hosted handler's HandlerTimeout), move the clock directly with <see cref="ManualTimeProvider.Advance"/>.</para>
    /// </remarks>
    /// <param name="delta">How far to move the clock; zero or more.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the clock is at its new time and nothing more can move without it.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delta"/> is negative.</exception>
    /// <exception cref="TimeoutException">Something stayed busy for <see cref="BrokerTestHarnessOptions.IdleTimeout"/>; the message lists what.</exception>
    public async Task AdvanceTimeAsync(TimeSpan delta, CancellationToken cancellationToken = default)
    {
        if (delta < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(delta), delta, "The harness's clock only moves forward; pass a delta of zero or more.");
        }

        DateTimeOffset target = Time.GetUtcNow() + delta;
        for (int step = 0; step < MaxClockSteps; step++)
        {
            await WaitAsync(static (_, _, quiet) => quiet, "quiet before the clock moves", failWhenQuiet: false, cancellationToken).ConfigureAwait(false);
            DateTimeOffset now = Time.GetUtcNow();
            if (Time.NextTimerDue is { } due && due <= target)
            {
                // One step: to the next due time, firing what falls due then.
                Time.SetUtcNow(due > now ? due : now);
                continue;
            }

            if (now < target)
            {
                Time.SetUtcNow(target);
                continue;
            }

            return;
        }

        throw new InvalidOperationException($"The clock took more than {MaxClockSteps} steps to move by {delta}: a timer keeps re-arming itself without moving forward.");
    }

    /// <summary>
    /// Describes what is pending: per queue and subscription, the backlog, the deliveries in flight and since when, and the
    /// deliveries waiting out a retry delay. The same text the waits fail with.
    /// </summary>
    /// <returns>A readable, multi-line description.</returns>
    public string DescribePending()
    {
        HarnessObserver.Counts counts = _observer.Read(out _);
        return Describe(counts, _observer.Snapshot(), Broker.GetSnapshot());
    }

    /// <summary>
    /// Disposes as <see cref="DisposeAsync"/> does, blocking the calling thread until that completes. Prefer
    /// <see cref="DisposeAsync"/>; this is for a service provider disposed with <c>using</c> rather than <c>await using</c>.
    /// </summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Disposes the broker, when the harness created it; a broker from a container is the container's to dispose.</summary>
    /// <returns>A task that completes when the broker has shut down.</returns>
    public async ValueTask DisposeAsync()
    {
        Broker.MessageDropped -= OnMessageDropped;
        if (_ownsBroker)
        {
            await Broker.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        HarnessObserver.Counts counts = _observer.Read(out _);
        return string.Create(CultureInfo.InvariantCulture, $"BrokerTestHarness at {Time.GetUtcNow():O}: {counts.Outstanding} deliveries owed, {counts.Parked} waiting out a retry delay, {counts.Scheduled} scheduled, {counts.Records} records");
    }

    private void OnMessageDropped(object? sender, MessageDroppedEventArgs dropped) => _observer.Dropped(dropped);

    /// <summary>
    /// Whether nothing can move until the clock does or the test acts: every delivery owed is waiting out a retry delay,
    /// or sits in the backlog of a subscription that cannot take it: one with no consumer, or one whose consumers' every
    /// slot (MaxInFlight) holds a delivery waiting out a retry delay. The snapshot is read before the counts; what it
    /// shows as stuck can only stay stuck meanwhile (only the clock, or the test, frees it), so the answer errs on the
    /// side of "still moving", never the other way.
    /// </summary>
    private bool IsQuiet(ref HarnessObserver.Counts counts, ref Task changed)
    {
        if (counts.IsQuiet)
        {
            return true;
        }

        BrokerSnapshot snapshot = Broker.GetSnapshot();
        // Keyed by the subscription itself, not its name: ephemeral subscriptions have none.
        var capacity = new Dictionary<SubscriptionKey, int>();
        foreach (ClientSnapshot client in snapshot.Clients)
        {
            foreach (ConsumerSnapshot consumer in client.Consumers)
            {
                if (!consumer.IsStandby)
                {
                    capacity[consumer.Key] = capacity.GetValueOrDefault(consumer.Key) + consumer.MaxInFlight;
                }
            }
        }

        counts = _observer.Read(out changed, out Dictionary<SubscriptionKey, int> parked);
        long stuck = 0;
        foreach (QueueSnapshot queue in snapshot.Queues)
        {
            foreach (SubscriptionSnapshot subscription in queue.Subscriptions)
            {
                if (subscription.Backlog == 0)
                {
                    continue;
                }

                SubscriptionKey key = subscription.Key;
                bool noConsumer = subscription.Consumers == 0 && subscription.Standby == 0;
                bool slotsAllWaiting = subscription.Consumers > 0
                    && capacity.TryGetValue(key, out int slots)
                    && subscription.InFlight >= slots
                    && parked.GetValueOrDefault(key) >= subscription.InFlight;
                stuck += noConsumer || slotsAllWaiting ? subscription.Backlog : 0;
            }
        }

        return counts.Outstanding - counts.Parked - stuck <= 0;
    }

    private async Task WaitAsync(Func<BrokerTestHarness, HarnessObserver.Counts, bool, bool> done, string what, bool failWhenQuiet, CancellationToken cancellationToken)
    {
        // Real time, on purpose: this only bounds a test that would otherwise hang.
        using CancellationTokenSource? timeout = _idleTimeout == Timeout.InfiniteTimeSpan ? null : new CancellationTokenSource(_idleTimeout, TimeProvider.System);
        using CancellationTokenSource linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout?.Token ?? CancellationToken.None);
        while (true)
        {
            HarnessObserver.Counts counts = _observer.Read(out Task changed);
            if (done(this, counts, false))
            {
                return;
            }

            bool quiet = IsQuiet(ref counts, ref changed);
            if (done(this, counts, quiet))
            {
                return;
            }

            if (failWhenQuiet && quiet)
            {
                throw new InvalidOperationException(
                    "The broker is not idle, and nothing can move until the clock does or a consumer attaches: call harness.AdvanceTimeAsync(...) to run retry delays and delayed deliveries, or attach a consumer to the subscription that has none, then wait again."
                    + Environment.NewLine + Describe(counts, _observer.Snapshot(), Broker.GetSnapshot()));
            }

            try
            {
                await changed.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeout is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
            {
                counts = _observer.Read(out _);
                throw new TimeoutException(
                    string.Create(CultureInfo.InvariantCulture, $"The broker did not become {what} within {_idleTimeout} (real time).")
                    + Environment.NewLine + Describe(counts, _observer.Snapshot(), Broker.GetSnapshot()));
            }
        }
    }

    private string Describe(HarnessObserver.Counts counts, MessageRecord[] records, BrokerSnapshot snapshot)
    {
        DateTimeOffset now = Time.GetUtcNow();
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Clock: {now:O} (+{now - _start} since the harness started).").AppendLine();
        text.Append(CultureInfo.InvariantCulture, $"Pending: {counts.Outstanding} deliveries owed to subscriptions ({counts.Parked} waiting out a retry delay); {counts.Scheduled} messages held for delayed delivery.").AppendLine();

        Dictionary<SubscriptionKey, Dictionary<Guid, MessageRecord>> open = OpenDeliveries(records);
        foreach (QueueSnapshot queue in snapshot.Queues)
        {
            bool busy = queue.Scheduled > 0 || queue.Subscriptions.Any(s => s.Backlog > 0 || s.InFlight > 0);
            if (!busy)
            {
                continue;
            }

            text.Append(CultureInfo.InvariantCulture, $"Queue '{queue.Name}': depth {queue.Depth}, scheduled {queue.Scheduled}").AppendLine();
            foreach (SubscriptionSnapshot subscription in queue.Subscriptions)
            {
                if (subscription.Backlog == 0 && subscription.InFlight == 0)
                {
                    continue;
                }

                string name = subscription.Name is null ? "(ephemeral)" : $"'{subscription.Name}'";
                string consumers = subscription.Consumers == 0 ? "no consumer attached: nothing reads it" : $"{subscription.Consumers} consumer(s)";
                text.Append(CultureInfo.InvariantCulture, $"  subscription {name} ({(subscription.IsDurable ? "durable" : "ephemeral")}, {consumers}): backlog {subscription.Backlog}, in flight {subscription.InFlight}").AppendLine();
                if (open.TryGetValue(subscription.Key, out Dictionary<Guid, MessageRecord>? pending))
                {
                    foreach (MessageRecord record in pending.Values.OrderBy(r => r.Sequence))
                    {
                        text.Append("    ").Append(DescribeOpen(record, now)).AppendLine();
                    }
                }
            }
        }

        if (records.Length > 0)
        {
            int first = Math.Max(0, records.Length - 10);
            text.Append(CultureInfo.InvariantCulture, $"Last {records.Length - first} of {records.Length} records:").AppendLine();
            for (int i = first; i < records.Length; i++)
            {
                text.Append(CultureInfo.InvariantCulture, $"  +{records[i].Time - _start} {records[i]}").AppendLine();
            }
        }

        return text.ToString();
    }

    private string DescribeOpen(MessageRecord record, DateTimeOffset now) => record.Kind == MessageRecordKind.Nacked
        ? string.Create(CultureInfo.InvariantCulture, $"#{record.Sequence} '{record.Event}' attempt {record.Attempt}: nacked at +{record.Time - _start}, waiting out its retry delay of {record.Delay} (due at +{record.Time + record.Delay!.Value - _start})")
        : string.Create(CultureInfo.InvariantCulture, $"#{record.Sequence} '{record.Event}' attempt {record.Attempt}: delivered at +{record.Time - _start} and not settled for {now - record.Time} of test-clock time");

    /// <summary>Per subscription, the deliveries read and not settled, or nacked and waiting out a delay, from the records.</summary>
    private static Dictionary<SubscriptionKey, Dictionary<Guid, MessageRecord>> OpenDeliveries(MessageRecord[] records)
    {
        var open = new Dictionary<SubscriptionKey, Dictionary<Guid, MessageRecord>>();
        foreach (MessageRecord record in records)
        {
            if (record.Kind is MessageRecordKind.Published or MessageRecordKind.Dropped or MessageRecordKind.Extended || record.SubscriptionKey is not { } key)
            {
                continue;
            }

            if (!open.TryGetValue(key, out Dictionary<Guid, MessageRecord>? pending))
            {
                open[key] = pending = [];
            }

            bool waiting = record.Kind == MessageRecordKind.Nacked && record.Delay is { } delay && delay > TimeSpan.Zero;
            if (record.Kind == MessageRecordKind.Delivered || waiting)
            {
                pending[record.MessageId] = record;
            }
            else
            {
                pending.Remove(record.MessageId);
            }
        }

        return open;
    }
}
