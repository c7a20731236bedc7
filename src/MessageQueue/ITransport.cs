namespace MessageQueue;

/// <summary>
/// A transport: the publish/subscribe contract of <see cref="IPublisher"/> and <see cref="ISubscriber"/> on something
/// other than the in-process <see cref="Broker"/>, such as a RabbitMQ server. Application code keeps using the two
/// interfaces; a host switches to a transport with <c>MessageBrokerBuilder.UseTransport</c> (MessageQueue.DependencyInjection).
/// </summary>
/// <remarks>
/// Disposing the transport ends its subscriptions and releases its connections. docs/transports.md in the repository
/// describes what an implementation does and the contract tests it runs.
/// </remarks>
public interface ITransport : IPublisher, ISubscriber, IAsyncDisposable
{
    /// <summary>
    /// Gets the transport's name as the OpenTelemetry <c>messaging.system</c> attribute gives it, such as
    /// <c>"rabbitmq"</c>: the tag on the handler metrics of hosted handlers that run on it.
    /// </summary>
    string MessagingSystem { get; }

    /// <summary>
    /// Declares a queue on the transport ahead of its first use, so that a missing permission or a conflicting
    /// definition shows when the host starts. Publishing and subscribing declare a queue on first use too.
    /// </summary>
    /// <param name="queue">The queue's name, by the broker's rules (<see cref="MessageRules.ThrowIfInvalidQueueName"/>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the transport has the queue.</returns>
    /// <remarks>
    /// Unlike <see cref="Broker.DeclareQueue{T}(string, QueueOptions?)"/>, it takes neither a payload type nor
    /// <see cref="QueueOptions"/>: on a transport each subscription reads its own payload type, and the server's own
    /// policies bound its queues. It is asynchronous because it is a round trip to the server.
    /// MessageQueue.DependencyInjection calls it at start for each queue declared with <c>DeclareQueue&lt;T&gt;</c>.
    /// </remarks>
    Task DeclareQueueAsync(string queue, CancellationToken cancellationToken = default);
}
