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

    /// <summary>Gets or sets how long <see cref="Broker.DisposeAsync"/> waits for consumers to settle what they hold.</summary>
    /// <value>The default is 30 seconds. Must be zero or positive and at most about 24.8 days, or <see cref="Timeout.InfiniteTimeSpan"/>.</value>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    internal BrokerOptions Clone() => new()
    {
        TimeProvider = TimeProvider,
        AutoDeclareQueues = AutoDeclareQueues,
        MaxQueues = MaxQueues,
        ShutdownTimeout = ShutdownTimeout,
    };

    internal void Validate(string paramName)
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

        if (Timeouts.Describe(ShutdownTimeout, nameof(ShutdownTimeout), allowZero: true) is { } timeoutError)
        {
            (errors ??= []).Add(timeoutError);
        }

        OptionsErrors.ThrowIfAny(errors, "BrokerOptions", paramName);
    }
}
