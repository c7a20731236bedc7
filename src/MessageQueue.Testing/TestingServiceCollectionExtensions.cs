using MessageQueue;
using MessageQueue.DependencyInjection;
using MessageQueue.Testing;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Swaps an app's MessageQueue registration for a <see cref="BrokerTestHarness"/>.</summary>
public static class TestingServiceCollectionExtensions
{
    /// <summary>
    /// Makes the app's broker a test harness's: the same queues, options and hosted handlers, registered as the app
    /// registers them, but in memory, on a <see cref="ManualTimeProvider"/>, and recorded. Resolve
    /// <see cref="BrokerTestHarness"/> from the container to publish, wait for idle, move the clock and assert.
    /// </summary>
    /// <param name="services">The app's service collection (after the app's own registrations).</param>
    /// <param name="configure">Sets the harness's start time and wait timeout; <see langword="null"/> for the defaults.</param>
    /// <returns>The service collection.</returns>
    /// <remarks>
    /// <para>What changes: the store (SQLite, say) and every durability setting are replaced by the in-memory default;
    /// the container's <see cref="TimeProvider"/> becomes the harness's clock, so the app's own time-based code
    /// moves with the broker's; and the broker's ShutdownTimeout is zero, so disposing the container never waits on
    /// that clock (hosted handlers still stop gracefully when the host stops). A second call does nothing.</para>
    /// <para>Hosted handlers run when the host starts, as in the app: start the host, then publish.</para>
    /// </remarks>
    /// <exception cref="ArgumentException">The options are invalid; the message says which and why.</exception>
    public static IServiceCollection AddMessageBrokerTestHarness(this IServiceCollection services, Action<BrokerTestHarnessOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        foreach (ServiceDescriptor descriptor in services)
        {
            if (descriptor.ServiceType == typeof(BrokerTestHarness))
            {
                return services;
            }
        }

        var options = new BrokerTestHarnessOptions();
        configure?.Invoke(options);
        if (options.Broker is not null)
        {
            throw new ArgumentException(
                "BrokerTestHarnessOptions.Broker is for a harness of its own; with AddMessageBrokerTestHarness the broker's options are the app's (AddMessageBroker).",
                nameof(configure));
        }

        options.Validate();

        // Each container built from these services gets its own clock and recorder: harnesses share nothing.
        services.AddMessageBroker();
        services.RemoveAll<TimeProvider>();
        services.AddSingleton(_ => new ManualTimeProvider(options.StartTime));
        services.AddSingleton<TimeProvider>(static provider => provider.GetRequiredService<ManualTimeProvider>());
        services.AddSingleton(static provider => new HarnessObserver(provider.GetRequiredService<ManualTimeProvider>()));

        // After the app's own configuration, whatever order it was registered in.
        services.AddOptions<MessageBrokerOptions>().PostConfigure<ManualTimeProvider, HarnessObserver>((broker, time, observer) =>
        {
            broker.Broker.TimeProvider = time;
            broker.Broker.Observer = observer;
            broker.Broker.ShutdownTimeout = TimeSpan.Zero;
            broker.Broker.Store = null;
            broker.Broker.Durability = null;
            broker.StoreFactory = null;
            foreach (QueueDeclaration queue in broker.Queues)
            {
                queue.Options.Durability = null;
            }
        });
        services.AddSingleton(provider => new BrokerTestHarness(
            provider.GetRequiredService<Broker>(), provider.GetRequiredService<ManualTimeProvider>(), provider.GetRequiredService<HarnessObserver>(), options));
        return services;
    }
}
