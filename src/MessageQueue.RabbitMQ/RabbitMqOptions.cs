using System.Text.Json;

namespace MessageQueue.RabbitMQ;

/// <summary>How a <see cref="RabbitMqTransport"/> connects to RabbitMQ and maps the MessageQueue contract onto it.</summary>
public sealed class RabbitMqOptions
{
    /// <summary>The AMQP URI of the server. The default is a server on this machine with the guest user.</summary>
    public string ConnectionString { get; set; } = "amqp://guest:guest@127.0.0.1:5672/";

    /// <summary>
    /// The client's name: shown as the connection's name in RabbitMQ's management tools, and the identity of
    /// this transport as a client. The default is "messagequeue".
    /// </summary>
    public string ClientName { get; set; } = "messagequeue";

    /// <summary>
    /// How long a publish waits for RabbitMQ to confirm it before it throws <see cref="TimeoutException"/>.
    /// The default is 30 seconds. A publish never completes before the server confirmed the message.
    /// </summary>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a subscribe (and declaring a queue) waits for the connection while it is down, before it throws
    /// <see cref="TimeoutException"/>. The default is 30 seconds.
    /// </summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How many dead letters the retained dead-letter queue of each queue keeps (RabbitMQ's x-max-length); older
    /// ones are dropped first. The default is 10,000, the in-memory broker's default.
    /// </summary>
    public int MaxDeadLetters { get; set; } = 10_000;

    /// <summary>
    /// How long to wait before each attempt to connect again after the connection was lost: the first delay before
    /// the first attempt, and so on, the last one repeating until the server is back or the transport is disposed.
    /// The default is 0.1 s, 0.5 s, 1 s, 2 s, then every 5 s.
    /// </summary>
    public IList<TimeSpan> ReconnectDelays { get; set; } =
        [TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5)];

    /// <summary>The serializer options for payloads; null means <see cref="JsonSerializerOptions.Default"/>.</summary>
    public JsonSerializerOptions? JsonSerializerOptions { get; set; }

    /// <summary>The clock for nack delays and timestamps. The default is <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString) || !Uri.TryCreate(ConnectionString, UriKind.Absolute, out Uri? uri)
            || (uri.Scheme != "amqp" && uri.Scheme != "amqps"))
        {
            throw new ArgumentException(
                $"RabbitMqOptions.ConnectionString '{ConnectionString}' is not an AMQP URI; use the form amqp://user:password@host:5672/vhost.",
                nameof(ConnectionString));
        }

        MessageRules.ThrowIfInvalidClientName(ClientName);
        if (PublishTimeout <= TimeSpan.Zero && PublishTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(PublishTimeout), PublishTimeout, "RabbitMqOptions.PublishTimeout must be positive, or Timeout.InfiniteTimeSpan.");
        }

        if (ConnectTimeout <= TimeSpan.Zero && ConnectTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), ConnectTimeout, "RabbitMqOptions.ConnectTimeout must be positive, or Timeout.InfiniteTimeSpan.");
        }

        if (MaxDeadLetters < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDeadLetters), MaxDeadLetters, "RabbitMqOptions.MaxDeadLetters must be at least 1.");
        }

        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
        ArgumentNullException.ThrowIfNull(ReconnectDelays, nameof(ReconnectDelays));
        foreach (TimeSpan delay in ReconnectDelays)
        {
            if (delay < TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(nameof(ReconnectDelays), delay, "RabbitMqOptions.ReconnectDelays must not hold negative delays.");
            }
        }
    }

    internal RabbitMqOptions Clone()
    {
        var clone = (RabbitMqOptions)MemberwiseClone();
        clone.ReconnectDelays = [.. ReconnectDelays];
        return clone;
    }
}
