using System.Text.Json;
using MessageQueue.Persistence;

namespace MessageQueue;

/// <summary>Options for a <see cref="Broker"/>.</summary>
/// <remarks>Values are copied when the broker is created; changing this instance later has no effect.</remarks>
public sealed class BrokerOptions
{
    /// <summary>Gets or sets the source of time for timestamps, timeouts and deadlines.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>. Tests pass a manual one.</value>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Gets or sets whether publishing to or subscribing to an undeclared queue declares it.</summary>
    /// <value>
    /// The default is <see langword="true"/>: the queue is declared with default <see cref="QueueOptions"/> and
    /// the payload type of that first call. With <see langword="false"/>, such calls throw
    /// <see cref="QueueNotFoundException"/>.
    /// </value>
    public bool AutoDeclareQueues { get; set; } = true;

    /// <summary>Gets or sets the most queues the broker holds, not counting their dead-letter queues.</summary>
    /// <value>
    /// The default is 1024. Must be at least 1. Queue names declared on first use come from data, so
    /// without a bound a stream of distinct names would grow the broker without limit; past the bound,
    /// declaring (or first use of) another queue throws <see cref="InvalidOperationException"/>.
    /// </value>
    public int MaxQueues { get; set; } = 1024;

    /// <summary>Gets or sets the most subscriptions one client (<see cref="Broker.Connect"/>) may hold at once.</summary>
    /// <value>The default is 1000. Must be at least 1. The broker's own subscriptions are the application's and are not counted.</value>
    public int MaxSubscriptionsPerClient { get; set; } = 1000;

    /// <summary>
    /// Gets or sets how many distinct event names one queue tags its metrics with (<c>messagequeue.event</c>) before it
    /// reports the rest as <c>_other</c>.
    /// </summary>
    /// <value>
    /// The default is 100. Must be between 0 and 10,000; 0 tags every event as <c>_other</c>. Event names can come from
    /// data, and every distinct tag value is a time series a metrics backend keeps: the bound keeps that number in your
    /// hands. Queue and subscription names are not capped: they come from code.
    /// </value>
    public int MaxMetricEventNames { get; set; } = 100;

    /// <summary>Gets or sets the longest event name a publish may use, in characters.</summary>
    /// <value>The default, and the most, is 255. Must be at least 1.</value>
    public int MaxEventNameLength { get; set; } = Names.MaxEventLength;

    /// <summary>Gets or sets the most characters a publish's headers may hold, names and values together.</summary>
    /// <value>The default is 16,384. Must be at least 0 (0: no headers at all). W3C trace context within its bounds (a 55-character <c>traceparent</c>, a <c>tracestate</c> of at most 512 characters) is not counted, so turning tracing on never makes a publish fail; longer values under those names count like any header.</value>
    public int MaxHeadersLength { get; set; } = 16 * 1024;

    /// <summary>Gets or sets the largest payload a durable queue stores, in bytes, once serialized.</summary>
    /// <value>The default is 4 MiB. Must be at least 1. A larger payload is refused at publish, before anything is stored.</value>
    public int MaxPersistedPayloadSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Gets or sets how long <see cref="Broker.DisposeAsync"/> waits for consumers to settle what they hold.</summary>
    /// <value>
    /// The default is 30 seconds. Must be zero or positive and at most about 24.8 days, or <see cref="Timeout.InfiniteTimeSpan"/>
    /// (wait until every consumer has settled). The wait ends when this much time has passed on <see cref="TimeProvider"/>
    /// or on the real clock (<see cref="TimeProvider.System"/>), whichever is first: a test that advances a manual clock
    /// ends it at once, and a manual clock that nobody advances cannot keep a dispose waiting longer than this in real
    /// time. Zero (what the test harness uses) takes back what is unsettled without waiting.
    /// </value>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets or sets where durable queues keep their messages, settlements and durable subscriptions.</summary>
    /// <value>
    /// The default is <see langword="null"/>: no store, every queue in memory only. With a store (for example
    /// <c>new SqliteMessageStore("broker.db")</c> from <c>MessageQueue.Sqlite</c>) the broker reads it back when it
    /// is created, and owns it: disposing the broker disposes the store.
    /// </value>
    public IMessageStore? Store { get; set; }

    /// <summary>Gets or sets the durability of queues whose <see cref="QueueOptions.Durability"/> is not set.</summary>
    /// <value>
    /// The default is <see langword="null"/>: <see cref="MessageQueue.Durability.Committed"/> when there is a
    /// <see cref="Store"/>, <see cref="MessageQueue.Durability.InMemory"/> otherwise.
    /// </value>
    public Durability? Durability { get; set; }

    /// <summary>Gets or sets the most store operations (publishes, acks and the like) written in one commit.</summary>
    /// <value>
    /// The default is 4096. Must be at least 1. The store's writer commits whatever has queued up since its last
    /// commit, up to this many operations (group commit); 1 commits every operation on its own.
    /// </value>
    public int MaxStoreBatch { get; set; } = 4096;

    /// <summary>Gets or sets the factory the broker creates its <see cref="System.Diagnostics.Metrics.Meter"/> with.</summary>
    /// <value>
    /// The default is <see langword="null"/>: the broker creates its own meter, named <c>MessageQueue</c>, and disposes it
    /// with itself. With dependency injection, <c>AddMessageBroker</c> passes the container's <see cref="System.Diagnostics.Metrics.IMeterFactory"/>.
    /// </value>
    public System.Diagnostics.Metrics.IMeterFactory? MeterFactory { get; set; }

    /// <summary>Gets or sets where the broker logs (category <c>MessageQueue</c>): drops, dead letters, handler failures, slow consumers cut loose, authorization denials, start and stop. Never payloads.</summary>
    /// <value>The default is <see langword="null"/>: no logging. With dependency injection, <c>AddMessageBroker</c> passes the container's <see cref="Microsoft.Extensions.Logging.ILoggerFactory"/>.</value>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// Gets the authorization rules for clients (<see cref="Broker.Connect"/>): who may publish and subscribe where. Empty by
    /// default: everything is allowed. Once there is a rule, a client's call is allowed only if a rule allows it and none
    /// denies it; see <see cref="AuthorizationRule"/>.
    /// </summary>
    public IList<AuthorizationRule> AuthorizationRules { get; } = new List<AuthorizationRule>();

    /// <summary>
    /// Gets or sets a custom authorizer, asked about every client call the <see cref="AuthorizationRules"/> do not decide.
    /// The default is <see langword="null"/>.
    /// </summary>
    public IBrokerAuthorizer? Authorizer { get; set; }

    /// <summary>Gets or sets the System.Text.Json options for the payloads of durable queues declared without a <c>JsonTypeInfo</c>.</summary>
    /// <value>
    /// The default is <see langword="null"/>: <see cref="JsonSerializerOptions.Default"/>. Reflection-based; in trimmed
    /// or native AOT applications declare durable queues with <see cref="Broker.DeclareQueue{T}(string, System.Text.Json.Serialization.Metadata.JsonTypeInfo{T}, QueueOptions?)"/>.
    /// </value>
    public JsonSerializerOptions? JsonSerializerOptions { get; set; }

    /// <summary>Gets the durability a queue gets when its options do not say.</summary>
    internal Durability DefaultDurability => Durability ?? (Store is null ? MessageQueue.Durability.InMemory : MessageQueue.Durability.Committed);

    internal BrokerOptions Clone()
    {
            var clone = new BrokerOptions
            {
            TimeProvider = TimeProvider,
            AutoDeclareQueues = AutoDeclareQueues,
            MaxQueues = MaxQueues,
            ShutdownTimeout = ShutdownTimeout,
            Store = Store,
            Durability = Durability,
            MaxStoreBatch = MaxStoreBatch,
            JsonSerializerOptions = JsonSerializerOptions,
            Observer = Observer,
            MeterFactory = MeterFactory,
            LoggerFactory = LoggerFactory,
            Authorizer = Authorizer,
            MaxSubscriptionsPerClient = MaxSubscriptionsPerClient,
            MaxEventNameLength = MaxEventNameLength,
            MaxMetricEventNames = MaxMetricEventNames,
            MaxHeadersLength = MaxHeadersLength,
            MaxPersistedPayloadSize = MaxPersistedPayloadSize,
        };
        foreach (AuthorizationRule rule in AuthorizationRules)
        {
            clone.AuthorizationRules.Add(rule);
        }

        return clone;
    }

    /// <summary>Gets or sets the observer of every message's life (the test harness); null in production.</summary>
    internal BrokerObserver? Observer { get; set; }

    internal void Validate(string paramName) => OptionsErrors.ThrowIfAny(GetErrors(), "BrokerOptions", paramName);

    /// <summary>Every problem with these options, or <see langword="null"/> when they are valid.</summary>
    internal List<string>? GetErrors()
    {
        List<string>? errors = null;
        if (TimeProvider is null)
        {
            (errors ??= []).Add("TimeProvider is null; use TimeProvider.System or a test clock.");
        }

        if (MaxQueues < 1)
        {
            (errors ??= []).Add($"MaxQueues is {MaxQueues}; it must be at least 1.");
        }

        if (MaxSubscriptionsPerClient < 1)
        {
            (errors ??= []).Add($"MaxSubscriptionsPerClient is {MaxSubscriptionsPerClient}; it must be at least 1.");
        }

        if (MaxMetricEventNames is < 0 or > 10_000)
        {
            (errors ??= []).Add($"MaxMetricEventNames is {MaxMetricEventNames}; it must be between 0 and 10000 (0 tags every event as _other).");
        }

        if (MaxEventNameLength is < 1 or > Names.MaxEventLength)
        {
            (errors ??= []).Add($"MaxEventNameLength is {MaxEventNameLength}; it must be between 1 and {Names.MaxEventLength}.");
        }

        if (MaxHeadersLength < 0)
        {
            (errors ??= []).Add($"MaxHeadersLength is {MaxHeadersLength}; it must be 0 or more.");
        }

        if (MaxPersistedPayloadSize < 1)
        {
            (errors ??= []).Add($"MaxPersistedPayloadSize is {MaxPersistedPayloadSize}; it must be at least 1.");
        }

        foreach (AuthorizationRule? rule in AuthorizationRules)
        {
            if (rule is null)
            {
                (errors ??= []).Add("AuthorizationRules contains null; remove it.");
            }
            else if (rule.Describe() is { } ruleError)
            {
                (errors ??= []).Add(ruleError);
            }
        }

        if (Timeouts.Describe(ShutdownTimeout, nameof(ShutdownTimeout), allowZero: true) is { } timeoutError)
        {
            (errors ??= []).Add(timeoutError);
        }

        if (Durability is { } durability && !Enum.IsDefined(durability))
        {
            (errors ??= []).Add($"Durability is {(int)durability}, which is not a Durability value; use InMemory, Committed or Fsync.");
        }
        else if (Durability is { } level && level != MessageQueue.Durability.InMemory && Store is null)
        {
            (errors ??= []).Add($"Durability is {level} but there is no Store to keep messages in; set BrokerOptions.Store (for example a SqliteMessageStore), or use Durability.InMemory.");
        }

        if (MaxStoreBatch < 1)
        {
            (errors ??= []).Add($"MaxStoreBatch is {MaxStoreBatch}; it must be at least 1.");
        }

        return errors;
    }
}
