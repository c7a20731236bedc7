using MessageQueue.ContractTests;

namespace MessageQueue.Sqlite.Tests;

/// <summary>The shared publisher/subscriber contract against a broker whose queues are durable in a SQLite file.</summary>
public sealed class SqliteBrokerContractTests : BrokerContractTests
{
    protected override ValueTask<IBrokerTarget> CreateTargetAsync() => new(new SqliteTarget());

    private sealed class SqliteTarget : IBrokerTarget
    {
        private readonly TempStoreFile _file = new();
        private readonly Broker _broker;

        public SqliteTarget() => _broker = new Broker(new BrokerOptions { Store = new SqliteMessageStore(_file.Path), Durability = Durability.Committed });

        public IPublisher Publisher => _broker;

        public ISubscriber Subscriber => _broker;

        public ValueTask DeclareQueueAsync<T>(string queue)
        {
            _broker.DeclareQueue<T>(queue);
            return ValueTask.CompletedTask;
        }

        public ValueTask<IClientTarget> ConnectAsync(string name) => new(new BrokerClientTarget(_broker.Connect(name)));

        public async ValueTask DisposeAsync()
        {
            await _broker.DisposeAsync();
            _file.Dispose();
        }
    }
}
