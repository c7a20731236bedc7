using MessageQueue.Persistence;

namespace MessageQueue.DependencyInjection;

/// <summary>
/// Everything AddMessageBroker, BindConfiguration and AddMessageHandler configure, gathered in one options
/// object so that one validator sees all of it and reports every problem in one exception.
/// </summary>
internal sealed class MessageBrokerOptions
{
    private readonly Dictionary<string, QueueDeclaration> _queues = new(StringComparer.Ordinal);

    public BrokerOptions Broker { get; } = new();

    public Func<IServiceProvider, IMessageStore>? StoreFactory { get; set; }

    /// <summary>Queues in the order they were first named (in code or in configuration).</summary>
    public List<QueueDeclaration> Queues { get; } = [];

    public List<HandlerRegistration> Handlers { get; } = [];

    /// <summary>
    /// Whether IPublisher and ISubscriber run on another transport (UseRabbitMq), whose queues follow its own rules: the
    /// in-memory broker's rules for declaring queues (AutoDeclareQueues, one payload type per queue) do not apply.
    /// </summary>
    public bool QueuesBelongToTransport { get; set; }

    /// <summary>Problems found while reading configuration, reported by the validator with the rest.</summary>
    public List<string> ConfigurationErrors { get; } = [];

    public QueueDeclaration GetOrAddQueue(string name)
    {
        if (!_queues.TryGetValue(name, out QueueDeclaration? queue))
        {
            queue = new QueueDeclaration(name);
            _queues.Add(name, queue);
            Queues.Add(queue);
        }

        return queue;
    }

    public QueueDeclaration? FindQueue(string name) => _queues.GetValueOrDefault(name);
}
