using MessageQueue;
using MessageQueue.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers MessageQueue's broker and hosted message handlers in an <see cref="IServiceCollection"/>.</summary>
public static class MessageQueueServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="Broker"/> singleton, with <see cref="IPublisher"/> and <see cref="ISubscriber"/> resolving
    /// to it, and a hosted service that creates it when the host starts and runs the hosted handlers. The container
    /// disposes the broker.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the broker: options, queues, configuration binding, store. May be <see langword="null"/>.</param>
    /// <returns>The service collection.</returns>
    /// <remarks>
    /// <para>Calling it again is safe: the broker is registered once, and each call's configuration is applied in
    /// order. A <see cref="TimeProvider"/> registered in the container is the broker's clock unless the options set
    /// another; hosted handlers log through the container's <c>ILoggerFactory</c>.</para>
    /// <para>Everything configured is validated when the host starts; every problem is reported in one
    /// <see cref="OptionsValidationException"/>.</para>
    /// </remarks>
    public static IServiceCollection AddMessageBroker(this IServiceCollection services, Action<MessageBrokerBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<MessageBrokerOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MessageBrokerOptions>, MessageBrokerOptionsValidator>());
        services.TryAddSingleton(BrokerFactory.Create);
        services.TryAddSingleton<IPublisher>(static provider => provider.GetRequiredService<Broker>());
        services.TryAddSingleton<ISubscriber>(static provider => provider.GetRequiredService<Broker>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, MessageBrokerHostedService>());
        configure?.Invoke(new MessageBrokerBuilder(services));
        return services;
    }

    /// <summary>
    /// Runs <typeparamref name="THandler"/> in a hosted service for the messages of <paramref name="queue"/> whose event
    /// matches <paramref name="filter"/>, each in its own DI scope. Registers the broker too, if it is not yet.
    /// </summary>
    /// <typeparam name="THandler">The handler; registered as scoped unless it already is registered.</typeparam>
    /// <typeparam name="TPayload">The queue's payload type.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="queue">The queue to read.</param>
    /// <param name="filter">An event name, with <c>*</c> for exactly one word and <c>#</c> for zero or more words.</param>
    /// <param name="subscriptionName">The durable subscription's name, or <see langword="null"/> for the handler type's full name.</param>
    /// <param name="configure">Sets concurrency, timeout and subscription options, or <see langword="null"/> for the defaults.</param>
    /// <returns>The service collection.</returns>
    /// <exception cref="ArgumentException">The queue name, the filter or the subscription name is not valid.</exception>
    /// <remarks>
    /// Returning from the handler acks; throwing nacks, so the message comes back after the subscription's backoff
    /// delay, and after <see cref="SubscriptionOptions.MaxDeliveries"/> attempts goes to the dead-letter queue. The
    /// subscription is durable: what is published while the host is stopped waits for the next start (with a store,
    /// across restarts). When the host stops, the handler takes no new messages, running calls finish within the
    /// host's shutdown timeout, and what is left unsettled goes back to the subscription (logged with a count).
    /// </remarks>
    public static IServiceCollection AddMessageHandler<THandler, TPayload>(
        this IServiceCollection services,
        string queue,
        string filter,
        string? subscriptionName = null,
        Action<MessageHandlerOptions>? configure = null)
        where THandler : class, IMessageHandler<TPayload> =>
        AddMessageHandler<THandler, TPayload>(services, queue, [filter], subscriptionName, configure);

    /// <summary>
    /// Runs <typeparamref name="THandler"/> in a hosted service for the messages of <paramref name="queue"/> whose event
    /// matches any of <paramref name="filters"/>. See <see cref="AddMessageHandler{THandler, TPayload}(IServiceCollection, string, string, string?, Action{MessageHandlerOptions}?)"/>.
    /// </summary>
    /// <typeparam name="THandler">The handler; registered as scoped unless it already is registered.</typeparam>
    /// <typeparam name="TPayload">The queue's payload type.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="queue">The queue to read.</param>
    /// <param name="filters">One or more filters.</param>
    /// <param name="subscriptionName">The durable subscription's name, or <see langword="null"/> for the handler type's full name.</param>
    /// <param name="configure">Sets concurrency, timeout and subscription options, or <see langword="null"/> for the defaults.</param>
    /// <returns>The service collection.</returns>
    /// <exception cref="ArgumentException">The queue name, a filter or the subscription name is not valid, or there are no filters.</exception>
    public static IServiceCollection AddMessageHandler<THandler, TPayload>(
        this IServiceCollection services,
        string queue,
        IEnumerable<string> filters,
        string? subscriptionName = null,
        Action<MessageHandlerOptions>? configure = null)
        where THandler : class, IMessageHandler<TPayload>
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(filters);
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
        string[] filterList = [.. filters];
        if (filterList.Length == 0)
        {
            throw new ArgumentException("No filters were given; pass at least one, such as \"#\" for every event.", nameof(filters));
        }

        foreach (string filter in filterList)
        {
            Names.ValidateFilter(filter, nameof(filters));
        }

        if (subscriptionName is not null && Names.DescribeInvalidName(subscriptionName, "Subscription name") is { } nameError)
        {
            throw new ArgumentException(nameError, nameof(subscriptionName));
        }

        services.AddMessageBroker();
        services.TryAddScoped<THandler>();
        services.Configure<MessageBrokerOptions>(options =>
        {
            var handlerOptions = new MessageHandlerOptions();
            configure?.Invoke(handlerOptions);
            if (handlerOptions.Subscription is { } subscription)
            {
                // The name given here wins; then one set in configure; then the handler type's name.
                subscription.Name = subscriptionName ?? subscription.Name ?? HandlerRegistration.DefaultSubscriptionName(typeof(THandler));
            }

            options.Handlers.Add(new HandlerRegistration<THandler, TPayload>(queue, filterList, handlerOptions));
        });
        return services;
    }
}
