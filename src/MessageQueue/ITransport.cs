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
}
