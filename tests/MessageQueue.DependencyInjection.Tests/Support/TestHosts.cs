using MessageQueue.ContractTests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MessageQueue.DependencyInjection.Tests.Support;

/// <summary>Builds real Generic Hosts (Microsoft.Extensions.Hosting) for the tests.</summary>
public static class TestHosts
{
    /// <summary>A host without the default sources (no appsettings.json, no console logging), logging into <paramref name="logs"/>.</summary>
    public static IHost Build(Action<IServiceCollection> services, LogSink? logs = null, IDictionary<string, string?>? configuration = null)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        if (configuration is not null)
        {
            builder.Configuration.AddInMemoryCollection(configuration);
        }

        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        services(builder.Services);
        return builder.Build();
    }

    /// <summary>A host with the hosted-handler tests' common services: the recorder, a scoped context and the "orders" queue.</summary>
    public static IHost BuildWithOrders(Recorder recorder, LogSink logs, Action<IServiceCollection> configure) => Build(
        services =>
        {
            services.AddSingleton(recorder);
            services.AddScoped<ScopedContext>();
            services.AddMessageBroker(b => b.DeclareQueue<Order>("orders"));
            configure(services);
        },
        logs);
}
