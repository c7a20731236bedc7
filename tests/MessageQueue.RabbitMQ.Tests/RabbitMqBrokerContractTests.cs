using System.Reflection;
using MessageQueue.ContractTests;

namespace MessageQueue.RabbitMQ.Tests;

/// <summary>The shared contract suite against a real RabbitMQ server.</summary>
public sealed class RabbitMqBrokerContractTests : BrokerContractTests
{
    /// <summary>What RabbitMQ cannot offer, each explained in the README's list of differences.</summary>
    private static readonly ContractCapability[] Missing =
    [
        // Quorum queues count every return in x-delivery-count, including deliveries the consumer had prefetched
        // but not read when it left.
        ContractCapability.UnreadDeliveriesKeepTheirAttempt,
    ];

    public static string? SkipReason(MethodInfo test)
    {
        if (RabbitMqServer.SkipReason is { } unreachable)
        {
            return unreachable;
        }

        foreach (RequiresCapabilityAttribute required in test.GetCustomAttributes<RequiresCapabilityAttribute>())
        {
            if (Array.IndexOf(Missing, required.Capability) >= 0)
            {
                return $"RabbitMQ lacks {required.Capability} (see the README's differences on RabbitMQ).";
            }
        }

        return null;
    }

    protected override async ValueTask<IBrokerTarget> CreateTargetAsync() =>
        new RabbitMqTarget(await RabbitMqTransport.ConnectAsync(RabbitMqServer.Options()));

    private sealed class RabbitMqTarget(RabbitMqTransport transport) : IBrokerTarget
    {
        private readonly List<RabbitMqTransport> _clients = [];

        public IPublisher Publisher => transport;

        public ISubscriber Subscriber => transport;

        public async ValueTask DeclareQueueAsync<T>(string queue) => await transport.DeclareQueueAsync(queue);

        public async ValueTask<IClientTarget> ConnectAsync(string name)
        {
            // A client is a connection of its own: disposing it closes the connection and detaches what it subscribed.
            RabbitMqTransport client = await RabbitMqTransport.ConnectAsync(RabbitMqServer.Options(name));
            _clients.Add(client);
            return new ClientTarget(client);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (RabbitMqTransport client in _clients)
            {
                await client.DisposeAsync();
            }

            await transport.DisposeAsync();
        }
    }

    private sealed class ClientTarget(RabbitMqTransport client) : IClientTarget
    {
        public IPublisher Publisher => client;

        public ISubscriber Subscriber => client;

        public ValueTask DisposeAsync() => client.DisposeAsync();
    }
}
