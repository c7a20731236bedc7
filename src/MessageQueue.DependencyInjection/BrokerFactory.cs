using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace MessageQueue.DependencyInjection;

/// <summary>Creates the container's broker from the validated options.</summary>
internal static class BrokerFactory
{
    public static Broker Create(IServiceProvider services)
    {
        // Value runs the validator: an invalid configuration throws OptionsValidationException with every problem.
        MessageBrokerOptions settings = services.GetRequiredService<IOptions<MessageBrokerOptions>>().Value;
        BrokerOptions options = settings.Broker.Clone();
        if (ReferenceEquals(options.TimeProvider, TimeProvider.System) && services.GetService<TimeProvider>() is { } time)
        {
            options.TimeProvider = time;
        }

        if (options.LoggerFactory is null && services.GetService<Microsoft.Extensions.Logging.ILoggerFactory>() is { } loggers)
        {
            options.LoggerFactory = loggers;
        }

        if (options.MeterFactory is null && services.GetService<System.Diagnostics.Metrics.IMeterFactory>() is { } meters)
        {
            // The container's meter factory: the host's metrics pipeline (and its tests' MetricCollector) see the broker's meter.
            options.MeterFactory = meters;
        }

        if (options.Authorizer is null && services.GetService<IBrokerAuthorizer>() is { } authorizer)
        {
            // An authorizer registered in the container, with whatever services it takes (a policy client, say).
            options.Authorizer = authorizer;
        }

        if (settings.StoreFactory is { } createStore)
        {
            options.Store = createStore(services);
        }

        Broker broker;
        try
        {
            broker = new Broker(options);
        }
        catch
        {
            // The broker owns the store only once it exists.
            if (settings.StoreFactory is not null)
            {
                options.Store?.Dispose();
            }

            throw;
        }

        try
        {
            foreach (QueueDeclaration queue in settings.Queues)
            {
                queue.Declare(broker);
            }
        }
        catch
        {
            // For example a queue the store holds with another payload type. Close the store before reporting it.
            broker.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }

        return broker;
    }
}
