using System.Text.Json.Serialization.Metadata;
using MessageQueue.Persistence;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace MessageQueue.DependencyInjection;

/// <summary>
/// Configures the broker that <c>services.AddMessageBroker(builder =&gt; …)</c> registers: its options, its
/// queues, where its settings come from in configuration, and its store.
/// </summary>
/// <remarks>
/// Everything here is applied when the broker is first resolved (at the latest when the host starts), in the order
/// it was configured: a later call wins over an earlier one, as with any options. The result is validated when the
/// host starts, and every problem is reported in one <see cref="Microsoft.Extensions.Options.OptionsValidationException"/>.
/// </remarks>
public sealed class MessageBrokerBuilder
{
    internal MessageBrokerBuilder(IServiceCollection services) => Services = services;

    /// <summary>Gets the service collection the broker is registered in, for extensions such as <c>UseSqlite</c>.</summary>
    public IServiceCollection Services { get; }

    /// <summary>Configures the broker's options.</summary>
    /// <param name="configure">Sets <see cref="BrokerOptions"/> properties.</param>
    /// <returns>This builder.</returns>
    /// <remarks>
    /// A <see cref="TimeProvider"/> registered in the container is used unless this sets
    /// <see cref="BrokerOptions.TimeProvider"/> to something other than <see cref="TimeProvider.System"/>.
    /// Set the store with <see cref="UseStore"/> (or an extension such as <c>UseSqlite</c>) rather than
    /// <see cref="BrokerOptions.Store"/>, so that it is opened only when the broker is created.
    /// </remarks>
    public MessageBrokerBuilder ConfigureBroker(Action<BrokerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        Services.Configure<MessageBrokerOptions>(options => configure(options.Broker));
        return this;
    }

    /// <summary>
    /// Runs <see cref="IPublisher"/> and <see cref="ISubscriber"/> (and so every <c>AddMessageHandler</c> handler) on
    /// another transport instead of the in-process broker. Extensions such as <c>UseRabbitMq</c> are built on this.
    /// </summary>
    /// <typeparam name="TTransport">The transport, registered as a singleton (as itself, <see cref="ITransport"/>, <see cref="IPublisher"/> and <see cref="ISubscriber"/>) and disposed with the container.</typeparam>
    /// <param name="factory">Creates the transport when it, <see cref="IPublisher"/> or <see cref="ISubscriber"/> is first resolved.</param>
    /// <returns>This builder.</returns>
    /// <remarks>
    /// Code written against the two interfaces does not change. The in-memory broker's rules for declaring queues
    /// (<see cref="BrokerOptions.AutoDeclareQueues"/>, one payload type per queue) are not checked when the host starts:
    /// the transport's queues follow its own rules. Hosted handlers run on the transport's subscriptions with the same
    /// loop, timeout, retries and shutdown as on the broker, and report the same process span and
    /// <c>messaging.process.duration</c>, tagged with the transport's <see cref="ITransport.MessagingSystem"/>.
    /// </remarks>
    public MessageBrokerBuilder UseTransport<TTransport>(Func<IServiceProvider, TTransport> factory)
        where TTransport : class, ITransport
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.TryAddSingleton(factory);
        Services.Configure<MessageBrokerOptions>(static settings => settings.QueuesBelongToTransport = true);
        Services.Replace(ServiceDescriptor.Singleton<ITransport>(static services => services.GetRequiredService<TTransport>()));
        Services.Replace(ServiceDescriptor.Singleton<IPublisher>(static services => services.GetRequiredService<TTransport>()));
        Services.Replace(ServiceDescriptor.Singleton<ISubscriber>(static services => services.GetRequiredService<TTransport>()));
        return this;
    }

    /// <summary>
    /// Declares a queue with payload type <typeparamref name="T"/>, created with the broker; on a transport
    /// (<see cref="UseTransport{TTransport}(Func{IServiceProvider, TTransport})"/>), declared on it when the host starts
    /// (<see cref="ITransport.DeclareQueueAsync"/>).
    /// </summary>
    /// <typeparam name="T">The queue's payload type.</typeparam>
    /// <param name="name">The queue name: 1 to 200 letters, digits, '-', '_' and '.'.</param>
    /// <param name="configure">
    /// Sets the queue's options, or <see langword="null"/> for the defaults (and whatever configuration binds). A
    /// callback rather than a <see cref="QueueOptions"/>, so that it applies over the settings configuration binds.
    /// On a transport, options are a start-up error: the server's own policies bound its queues.
    /// </param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid queue name.</exception>
    public MessageBrokerBuilder DeclareQueue<T>(string name, Action<QueueOptions>? configure = null) =>
        Declare(name, static (broker, queue, options) => broker.DeclareQueue<T>(queue, options), typeof(T), configure);

    /// <summary>
    /// Declares a durable-capable queue with payload type <typeparamref name="T"/> whose payloads the store writes
    /// with a source-generated System.Text.Json contract (for trimmed and native AOT applications).
    /// </summary>
    /// <typeparam name="T">The queue's payload type.</typeparam>
    /// <param name="name">The queue name.</param>
    /// <param name="typeInfo">The payload's JSON contract, from a <see cref="System.Text.Json.Serialization.JsonSerializerContext"/>.</param>
    /// <param name="configure">Sets the queue's options, or <see langword="null"/> for the defaults.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid queue name.</exception>
    public MessageBrokerBuilder DeclareQueue<T>(string name, JsonTypeInfo<T> typeInfo, Action<QueueOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return Declare(name, (broker, queue, options) => broker.DeclareQueue(queue, typeInfo, options), typeof(T), configure);
    }

    /// <summary>
    /// Reads the broker's settings and the queues' options from the configuration section
    /// <paramref name="sectionPath"/> (for example <c>appsettings.json</c>).
    /// </summary>
    /// <param name="sectionPath">The section's path. The default is <c>"MessageQueue"</c>.</param>
    /// <returns>This builder.</returns>
    /// <remarks>
    /// <para>The section holds <see cref="BrokerOptions"/> settings (<c>AutoDeclareQueues</c>, <c>MaxQueues</c>,
    /// <c>MaxSubscriptionsPerClient</c>, <c>MaxEventNameLength</c>, <c>MaxHeadersLength</c>, <c>MaxPersistedPayloadSize</c>,
    /// <c>ShutdownTimeout</c>, <c>Durability</c>, <c>MaxStoreBatch</c>), an <c>AuthorizationRules</c> array, and a
    /// <c>Queues</c> object with one entry of <see cref="QueueOptions"/> settings per queue name. A queue named there must also be declared in code with
    /// <see cref="DeclareQueue{T}(string, Action{QueueOptions}?)"/>, which gives its payload type.</para>
    /// <para>A key that is not a setting, or a value that does not convert, is a validation error on start, not
    /// silently ignored.</para>
    /// </remarks>
    public MessageBrokerBuilder BindConfiguration(string sectionPath = "MessageQueue")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sectionPath);
        Services.AddOptions<MessageBrokerOptions>().Configure<IServiceProvider>(
            (options, services) => ConfigurationReader.Read(services, sectionPath, options));
        return this;
    }

    /// <summary>Sets the store the broker keeps durable queues in, created when the broker is created.</summary>
    /// <param name="factory">Creates the store from the container. The broker owns it and disposes it.</param>
    /// <returns>This builder.</returns>
    /// <remarks>Without a store, every queue is in memory only. <c>MessageQueue.Sqlite</c> adds <c>UseSqlite</c>.</remarks>
    public MessageBrokerBuilder UseStore(Func<IServiceProvider, IMessageStore> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.Configure<MessageBrokerOptions>(options => options.StoreFactory = factory);
        return this;
    }

    private MessageBrokerBuilder Declare(string name, Action<Broker, string, QueueOptions> declare, Type payloadType, Action<QueueOptions>? configure)
    {
        Names.ValidateQueueName(name, nameof(name), allowDeadLetter: false);
        Services.Configure<MessageBrokerOptions>(options =>
        {
            QueueDeclaration queue = options.GetOrAddQueue(name);
            queue.SetPayloadType(payloadType, declare);
            if (configure is not null)
            {
                queue.OptionsGiven = true;
                configure(queue.Options);
            }
        });
        return this;
    }
}
