using MessageQueue;
using MessageQueue.DependencyInjection;
using MessageQueue.RabbitMQ;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Runs the app's publishers, subscribers and hosted handlers on RabbitMQ instead of the in-process broker.</summary>
public static class RabbitMqMessageBrokerBuilderExtensions
{
    /// <summary>
    /// Makes <see cref="IPublisher"/> and <see cref="ISubscriber"/> (and so every <c>AddMessageHandler</c> handler)
    /// run on the RabbitMQ server at <paramref name="connectionString"/>. The one-line switch from the in-memory broker:
    /// code written against the two interfaces does not change.
    /// </summary>
    /// <param name="builder">The broker builder.</param>
    /// <param name="connectionString">The server's AMQP URI, for example <c>"amqp://guest:guest@localhost:5672/"</c>.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentException">The connection string is not an AMQP URI; checked here, at registration.</exception>
    public static MessageBrokerBuilder UseRabbitMq(this MessageBrokerBuilder builder, string connectionString) =>
        UseRabbitMq(builder, options => options.ConnectionString = connectionString);

    /// <summary>
    /// Makes <see cref="IPublisher"/> and <see cref="ISubscriber"/> (and so every <c>AddMessageHandler</c> handler)
    /// run on RabbitMQ, with the transport's options set by <paramref name="configure"/>. The transport is a singleton
    /// that connects in the background (and reconnects after a loss); the container's <see cref="TimeProvider"/>
    /// becomes its clock unless <paramref name="configure"/> sets one.
    /// </summary>
    /// <param name="builder">The broker builder.</param>
    /// <param name="configure">Sets the transport's options.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentException">An option is invalid; checked here, at registration.</exception>
    public static MessageBrokerBuilder UseRabbitMq(this MessageBrokerBuilder builder, Action<RabbitMqOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new RabbitMqOptions();
        configure(options);
        options.Validate();
        RabbitMqOptions copy = options.Clone();

        return builder.UseTransport(services =>
        {
            RabbitMqOptions settings = copy.Clone();
            if (ReferenceEquals(settings.TimeProvider, TimeProvider.System) && services.GetService<TimeProvider>() is { } time)
            {
                settings.TimeProvider = time;
            }

            return new RabbitMqTransport(settings);
        });
    }
}
