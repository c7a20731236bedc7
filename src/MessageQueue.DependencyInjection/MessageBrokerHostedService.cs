using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace MessageQueue.DependencyInjection;

/// <summary>
/// Creates the broker when the host starts (so a store is read back, and configuration errors surface, at start
/// rather than on the first request), starts the hosted handlers, and stops them gracefully when the host stops.
/// The broker itself is disposed with the container, after every hosted service has stopped.
/// </summary>
internal sealed class MessageBrokerHostedService(IServiceProvider services, IOptions<MessageBrokerOptions> options) : IHostedService, IDisposable
{
    private readonly List<HandlerRunner> _runners = [];

    // The handler metrics of hosted handlers on a transport (on the broker they use the broker's); disposed with the host.
    private BrokerMetrics? _transportMetrics;
    private readonly ILogger _logger = (services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance).CreateLogger("MessageQueue.Hosting");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        MessageBrokerOptions settings = options.Value;
        // Resolving the subscriber creates the broker (or, with UseRabbitMq, the transport). The in-memory broker is
        // only created when it is the one carrying the messages.
        ISubscriber subscriber = services.GetRequiredService<ISubscriber>();
        Broker? broker = subscriber as Broker;
        TimeProvider time = broker?.TimeProvider ?? services.GetService<TimeProvider>() ?? TimeProvider.System;
        IServiceScopeFactory scopes = services.GetRequiredService<IServiceScopeFactory>();
        if (broker is null && settings.Handlers.Count > 0)
        {
            // Tagged with the transport's messaging.system, on the container's meter factory when it has one.
            string system = (subscriber as ITransport)?.MessagingSystem ?? BrokerMetrics.BrokerSystem;
            _transportMetrics = new BrokerMetrics(null, services.GetService<System.Diagnostics.Metrics.IMeterFactory>(), time, settings.Broker.MaxMetricEventNames, system);
        }

        try
        {
            if (broker is null && subscriber is ITransport transport)
            {
                // The queues declared in code exist on the transport before any handler subscribes (the broker declares
                // them when it is created).
                foreach (QueueDeclaration queue in settings.Queues)
                {
                    await transport.DeclareQueueAsync(queue.Name, cancellationToken).ConfigureAwait(false);
                }
            }

            await ResolveHandlersAsync(settings, scopes).ConfigureAwait(false);
            foreach (HandlerRegistration registration in settings.Handlers)
            {
                HandlerRunner runner = registration.CreateRunner(scopes, time, _logger, _transportMetrics);
                await runner.StartAsync(subscriber, cancellationToken).ConfigureAwait(false);
                lock (_runners)
                {
                    _runners.Add(runner);
                }
            }
        }
        catch (Exception error)
        {
            // The host does not call StopAsync after a failed start: stop what did start, at once (their running
            // calls are cancelled and their messages go back), so no handler keeps running in a host that failed.
            int started = _runners.Count;
            using var now = new CancellationTokenSource();
            await now.CancelAsync().ConfigureAwait(false);
            await StopAsync(now.Token).ConfigureAwait(false);
            Log.StartFailed(_logger, error, started);
            throw;
        }

        Log.BrokerStarted(_logger, settings.Queues.Count, settings.Handlers.Count);
    }

    /// <summary>
    /// Builds each handler once, in a scope of its own, before any starts: a handler the container cannot build (a
    /// constructor dependency that is not registered) would otherwise fail every message until it is dead-lettered.
    /// Every such handler is reported in one exception, and the host does not start.
    /// </summary>
    private static async Task ResolveHandlersAsync(MessageBrokerOptions settings, IServiceScopeFactory scopes)
    {
        List<string>? problems = null;
        foreach (HandlerRegistration registration in settings.Handlers)
        {
            AsyncServiceScope scope = scopes.CreateAsyncScope();
            await using (scope.ConfigureAwait(false))
            {
                try
                {
                    scope.ServiceProvider.GetRequiredService(registration.HandlerType);
                }
#pragma warning disable CA1031 // Whatever the container or the constructor threw, it is reported, with every other such handler.
                catch (Exception error)
#pragma warning restore CA1031
                {
                    (problems ??= []).Add($"{registration}: {error.GetType().Name}: {error.Message}");
                }
            }
        }

        if (problems is not null)
        {
            throw new InvalidOperationException(
                $"The container cannot create {problems.Count} hosted message handler(s), so the host did not start and no message was taken. " +
                "Register the services their constructors take, and check that their constructors succeed. " + string.Join(" ", problems));
        }
    }

    /// <summary>Releases the handler metrics of hosted handlers on a transport.</summary>
    public void Dispose() => _transportMetrics?.Dispose();

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        HandlerRunner[] runners;
        lock (_runners)
        {
            runners = [.. _runners];
            _runners.Clear();
        }

        if (runners.Length == 0)
        {
            return;
        }

        // All at once: each gets the whole of the host's shutdown timeout.
        var stopping = new Task<HandlerTotals>[runners.Length];
        for (int i = 0; i < stopping.Length; i++)
        {
            stopping[i] = runners[i].StopAsync(cancellationToken);
        }

        HandlerTotals[] totals = await Task.WhenAll(stopping).ConfigureAwait(false);
        long handled = 0;
        int returned = 0;
        foreach (HandlerTotals total in totals)
        {
            handled += total.Handled;
            returned += total.Returned;
        }

        Log.HandlersStopped(_logger, handled, returned);
    }
}
