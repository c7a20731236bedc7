namespace MessageQueue.ContractTests;

/// <summary>
/// What the contract suite needs from a store or transport: the publisher and subscriber contracts,
/// a way to declare a queue, and named clients. Each target (in-memory, SQLite, RabbitMQ) implements
/// this once; every test in <see cref="BrokerContractTests"/> then runs against it.
/// </summary>
public interface IBrokerTarget : IAsyncDisposable
{
    IPublisher Publisher { get; }

    ISubscriber Subscriber { get; }

    /// <summary>Declares a queue with default options.</summary>
    ValueTask DeclareQueueAsync<T>(string queue);

    /// <summary>Connects a named client that owns what it subscribes.</summary>
    ValueTask<IClientTarget> ConnectAsync(string name);
}

/// <summary>A connected client: publishes, subscribes, and detaches everything on dispose.</summary>
public interface IClientTarget : IAsyncDisposable
{
    IPublisher Publisher { get; }

    ISubscriber Subscriber { get; }
}

/// <summary>A <see cref="BrokerClient"/> as a contract client, for targets built on a <see cref="Broker"/>.</summary>
public sealed class BrokerClientTarget(BrokerClient client) : IClientTarget
{
    public IPublisher Publisher => client;

    public ISubscriber Subscriber => client;

    public ValueTask DisposeAsync() => client.DisposeAsync();
}
