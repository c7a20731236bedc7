namespace MessageQueue.Testing;

/// <summary>Options for a <see cref="BrokerTestHarness"/>.</summary>
public sealed class BrokerTestHarnessOptions
{
    /// <summary>
    /// Gets or sets the options of the harness's broker. The harness sets their <see cref="BrokerOptions.TimeProvider"/>
    /// to its own <see cref="BrokerTestHarness.Time"/>, so leave it unset, and runs in memory, so leave
    /// <see cref="BrokerOptions.Store"/> unset; its <see cref="BrokerOptions.ShutdownTimeout"/> is zero, so disposing the
    /// harness never waits on its manual clock. <see langword="null"/> (the default) uses default options.
    /// </summary>
    public BrokerOptions? Broker { get; set; }

    /// <summary>Gets or sets the time the harness's clock starts at. Defaults to <see cref="ManualTimeProvider.DefaultStart"/>.</summary>
    public DateTimeOffset StartTime { get; set; } = ManualTimeProvider.DefaultStart;

    /// <summary>
    /// Gets or sets how long, in real time, <see cref="BrokerTestHarness.WaitForIdleAsync"/> and the other waits give up after,
    /// with a dump of what is pending. This is a guard for a test that would otherwise hang, never a way of deciding that
    /// the broker is idle (that is decided by counts). Defaults to 10 seconds.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(10);

    internal void Validate()
    {
        if (IdleTimeout <= TimeSpan.Zero && IdleTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(IdleTimeout), IdleTimeout, "BrokerTestHarnessOptions.IdleTimeout must be positive, or Timeout.InfiniteTimeSpan to wait without a limit.");
        }

        if (Broker is { Store: not null })
        {
            throw new ArgumentException(
                "BrokerTestHarnessOptions.Broker.Store is set, but the harness runs in memory: leave Store unset (test a store with the broker itself).",
                nameof(Broker));
        }

        if (Broker is { } broker && !ReferenceEquals(broker.TimeProvider, TimeProvider.System))
        {
            throw new ArgumentException(
                "BrokerTestHarnessOptions.Broker.TimeProvider is set, but the harness brings its own clock (BrokerTestHarness.Time). Leave it unset, and use harness.Time in your own code.",
                nameof(Broker));
        }
    }
}
