using System.Globalization;

namespace MessageQueue;

/// <summary>Options for one queue, given to <see cref="Broker.DeclareQueue{T}(string, QueueOptions?)"/>.</summary>
/// <remarks>Values are copied when the queue is declared; changing this instance later has no effect.</remarks>
public sealed class QueueOptions
{
    /// <summary>Gets or sets the most messages the queue retains at once.</summary>
    /// <value>The default is 10 000. Must be at least 1.</value>
    /// <remarks>
    /// A message is retained from its publish until every subscription that matched it has settled it
    /// (interest retention), including while it is in flight with a consumer.
    /// </remarks>
    public int MaxMessages { get; set; } = 10_000;

    /// <summary>
    /// Gets or sets the most messages a durable queue keeps in memory; the others it retains wait in the store and are
    /// read back, in sequence order, as consumers release the ones in memory.
    /// </summary>
    /// <value>The default is 10 000. Must be at least 1.</value>
    /// <remarks>
    /// <para>This bounds a durable queue's memory, at run time and after a restart, however many messages its store
    /// retains: a restart reads back only this many before the first delivery. <see cref="MaxMessages"/> still bounds
    /// how many the queue retains in all, so set it higher than this to keep a backlog that does not fit in memory.</para>
    /// <para>A message in flight with a consumer counts as in memory, so give this room for every consumer's
    /// <see cref="SubscriptionOptions.MaxInFlight"/>. The window is the queue's, not each subscription's: when the
    /// store holds more than fits, a subscription that is ahead receives the next messages once the slowest one has
    /// released half the window.</para>
    /// <para>It applies to durable queues with interest retention on a store that reads pages
    /// (<see cref="Persistence.IPagedMessageStore"/>: the SQLite store and <see cref="Persistence.InMemoryMessageStore"/>).
    /// In-memory queues hold at most <see cref="MaxMessages"/> anyway. A queue with <see cref="RetentionPolicy.Limits"/>
    /// keeps its whole log in memory, and so does one with <see cref="OverflowPolicy.DropOldest"/>, which must be able
    /// to drop its oldest message at once. Messages held for delayed delivery are kept in memory apart from the
    /// window.</para>
    /// </remarks>
    public int MaxMessagesInMemory { get; set; } = 10_000;

    /// <summary>Gets or sets what a publish does when the queue is full.</summary>
    /// <value>The default is <see cref="OverflowPolicy.Wait"/>.</value>
    public OverflowPolicy Overflow { get; set; } = OverflowPolicy.Wait;

    /// <summary>Gets or sets how long a publish waits for room under <see cref="OverflowPolicy.Wait"/>.</summary>
    /// <value>The default is 30 seconds. Must be positive and at most about 24.8 days, or <see cref="Timeout.InfiniteTimeSpan"/>.</value>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets or sets how long a message stays deliverable when its publish gives no <see cref="PublishOptions.TimeToLive"/>.</summary>
    /// <value>The default is <see cref="Timeout.InfiniteTimeSpan"/>: messages do not expire. Otherwise positive, at most about 24.8 days.</value>
    public TimeSpan TimeToLive { get; set; } = Timeout.InfiniteTimeSpan;

    /// <summary>
    /// Gets or sets how long the queue remembers the ids of messages published with a
    /// <see cref="PublishOptions.MessageId"/>, to drop duplicates.
    /// </summary>
    /// <value>
    /// The default is <see cref="TimeSpan.Zero"/>: no deduplication. Otherwise positive, at most about 24.8 days.
    /// The queue remembers at most <see cref="DeduplicationCapacity"/> ids; past that it forgets the oldest.
    /// </value>
    public TimeSpan DeduplicationWindow { get; set; } = TimeSpan.Zero;

    /// <summary>Gets or sets the most message ids the deduplication window remembers.</summary>
    /// <value>The default is 100 000. Must be at least 1.</value>
    public int DeduplicationCapacity { get; set; } = 100_000;

    /// <summary>Gets or sets how long the queue keeps its messages.</summary>
    /// <value>
    /// The default is <see cref="RetentionPolicy.Interest"/>. With <see cref="RetentionPolicy.Limits"/> the
    /// <see cref="Overflow"/> policy must be <see cref="OverflowPolicy.DropOldest"/> (evict the oldest message)
    /// or <see cref="OverflowPolicy.Reject"/> (refuse new ones): acks free no room, so there is nothing to wait for.
    /// </value>
    public RetentionPolicy Retention { get; set; } = RetentionPolicy.Interest;

    /// <summary>Gets or sets, for <see cref="RetentionPolicy.Limits"/> retention, how old a message may get before it is evicted.</summary>
    /// <value>The default is <see cref="Timeout.InfiniteTimeSpan"/>. Otherwise positive, at most about 24.8 days; only with Limits retention.</value>
    public TimeSpan MaxAge { get; set; } = Timeout.InfiniteTimeSpan;

    /// <summary>Gets or sets whether the queue has a dead-letter queue (<c>&lt;queue&gt;.$dlq</c>).</summary>
    /// <value>
    /// The default is <see langword="true"/>. Without one, a message that would be dead-lettered (rejected, out
    /// of deliveries, expired) is dropped instead: counted in the snapshot and raised as <see cref="Broker.MessageDropped"/>.
    /// </value>
    public bool DeadLetters { get; set; } = true;

    /// <summary>
    /// Gets or sets whether messages this queue drops for lack of room go to its dead-letter queue as well, with
    /// the reason <see cref="DeadLetterReasons.Overflow"/>.
    /// </summary>
    /// <value>
    /// The default is <see langword="false"/>: a dropped message is counted and raised as <see cref="Broker.MessageDropped"/>,
    /// and then it is gone. When <see langword="true"/>, each subscription that loses a message to
    /// <see cref="OverflowPolicy.DropOldest"/>, to its own <see cref="SubscriptionOptions.MaxBacklog"/>, or by being cut
    /// loose, also leaves a copy in the dead-letter queue to inspect or replay; the drop is still counted and raised.
    /// Evictions by <see cref="RetentionPolicy.Limits"/> retention are not overflow and are never dead-lettered.
    /// Requires <see cref="DeadLetters"/>.
    /// </value>
    public bool DeadLetterDrops { get; set; }

    /// <summary>Gets or sets how far the queue's messages go before a publish completes.</summary>
    /// <value>
    /// The default is <see langword="null"/>: the broker's <see cref="BrokerOptions.Durability"/>. Anything but
    /// <see cref="MessageQueue.Durability.InMemory"/> needs a <see cref="BrokerOptions.Store"/>. The queue's
    /// dead-letter queue has the same durability.
    /// </value>
    public Durability? Durability { get; set; }

    internal QueueOptions Clone() => new()
    {
        MaxMessages = MaxMessages,
        MaxMessagesInMemory = MaxMessagesInMemory,
        Overflow = Overflow,
        PublishTimeout = PublishTimeout,
        TimeToLive = TimeToLive,
        DeduplicationWindow = DeduplicationWindow,
        DeduplicationCapacity = DeduplicationCapacity,
        DeadLetters = DeadLetters,
        DeadLetterDrops = DeadLetterDrops,
        Durability = Durability,
        Retention = Retention,
        MaxAge = MaxAge,
    };

    internal bool SameAs(QueueOptions other) =>
        MaxMessages == other.MaxMessages && MaxMessagesInMemory == other.MaxMessagesInMemory && Overflow == other.Overflow && PublishTimeout == other.PublishTimeout &&
        TimeToLive == other.TimeToLive && DeduplicationWindow == other.DeduplicationWindow &&
        DeduplicationCapacity == other.DeduplicationCapacity && DeadLetters == other.DeadLetters &&
        DeadLetterDrops == other.DeadLetterDrops && Durability == other.Durability &&
        Retention == other.Retention && MaxAge == other.MaxAge;

    /// <summary>Checks every option and throws one exception that lists every problem.</summary>
    internal void Validate(string paramName) => OptionsErrors.ThrowIfAny(GetErrors(), "QueueOptions", paramName);

    /// <summary>Every problem with these options, or <see langword="null"/> when they are valid.</summary>
    internal List<string>? GetErrors()
    {
        List<string>? errors = null;
        if (MaxMessages < 1)
        {
            (errors ??= []).Add($"MaxMessages is {MaxMessages}; it must be at least 1.");
        }

        if (MaxMessagesInMemory < 1)
        {
            (errors ??= []).Add($"MaxMessagesInMemory is {MaxMessagesInMemory}; it must be at least 1.");
        }

        if (!Enum.IsDefined(Overflow))
        {
            (errors ??= []).Add($"Overflow is {(int)Overflow}, which is not an OverflowPolicy value; use Wait, Reject or DropOldest.");
        }

        if (Timeouts.Describe(PublishTimeout, nameof(PublishTimeout), allowZero: false) is { } timeoutError)
        {
            (errors ??= []).Add(timeoutError);
        }

        if (Timeouts.Describe(TimeToLive, nameof(TimeToLive), allowZero: false) is { } ttlError)
        {
            (errors ??= []).Add(ttlError);
        }

        if (DeduplicationWindow == Timeout.InfiniteTimeSpan)
        {
            (errors ??= []).Add("DeduplicationWindow is infinite; remembering ids forever would grow without bound. Use a finite window.");
        }
        else if (Timeouts.Describe(DeduplicationWindow, nameof(DeduplicationWindow), allowZero: true) is { } windowError)
        {
            (errors ??= []).Add(windowError);
        }

        if (DeduplicationCapacity < 1)
        {
            (errors ??= []).Add($"DeduplicationCapacity is {DeduplicationCapacity}; it must be at least 1.");
        }

        if (!Enum.IsDefined(Retention))
        {
            (errors ??= []).Add($"Retention is {(int)Retention}, which is not a RetentionPolicy value; use Interest or Limits.");
        }
        else if (Retention == RetentionPolicy.Limits && Overflow == OverflowPolicy.Wait)
        {
            (errors ??= []).Add("Retention is Limits with Overflow Wait; acks free no room under Limits retention, so a publish would wait for nothing. Use Overflow DropOldest (evict the oldest message) or Reject (refuse new ones).");
        }

        if (Timeouts.Describe(MaxAge, nameof(MaxAge), allowZero: false) is { } ageError)
        {
            (errors ??= []).Add(ageError);
        }
        else if (MaxAge != Timeout.InfiniteTimeSpan && Retention != RetentionPolicy.Limits)
        {
            (errors ??= []).Add("MaxAge is set on a queue with Interest retention; it applies only to Limits retention, where messages are kept whether or not they were acked.");
        }

        if (Durability is { } durability && !Enum.IsDefined(durability))
        {
            (errors ??= []).Add($"Durability is {(int)durability}, which is not a Durability value; use InMemory, Committed or Fsync.");
        }

        if (DeadLetterDrops && !DeadLetters)
        {
            (errors ??= []).Add("DeadLetterDrops is on but DeadLetters is off; dropped messages would have no dead-letter queue to go to. Turn DeadLetters on, or DeadLetterDrops off.");
        }

        return errors;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"MaxMessages={MaxMessages}, MaxMessagesInMemory={MaxMessagesInMemory}, Overflow={Overflow}, Retention={Retention}, MaxAge={MaxAge}, PublishTimeout={PublishTimeout}, TimeToLive={TimeToLive}, DeduplicationWindow={DeduplicationWindow}, DeadLetters={DeadLetters}, DeadLetterDrops={DeadLetterDrops}, Durability={Durability?.ToString() ?? "(broker default)"}");
}
