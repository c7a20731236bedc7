using MessageQueue.ContractTests;

namespace MessageQueue.Tests.Contract;

/// <summary>The shared contract suite against the in-memory broker.</summary>
public sealed class InMemoryBrokerContractTests : BrokerContractTests
{
    protected override ValueTask<IBrokerTarget> CreateTargetAsync() => new(new InMemoryTarget());

    private sealed class InMemoryTarget : IBrokerTarget
    {
        private readonly Broker _broker = new();

        public IPublisher Publisher => _broker;

        public ISubscriber Subscriber => _broker;

        public ValueTask DeclareQueueAsync<T>(string queue)
        {
            _broker.DeclareQueue<T>(queue);
            return ValueTask.CompletedTask;
        }

        public ValueTask<IClientTarget> ConnectAsync(string name) => new(new BrokerClientTarget(_broker.Connect(name)));

        public ValueTask DisposeAsync() => _broker.DisposeAsync();
    }
}
