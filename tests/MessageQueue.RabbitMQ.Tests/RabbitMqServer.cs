using System.Net.Sockets;

namespace MessageQueue.RabbitMQ.Tests;

/// <summary>
/// The RabbitMQ server the tests run against: amqp://guest:guest@127.0.0.1:5672/ unless MQ_RABBITMQ_URL says
/// otherwise. `eng/rabbitmq.sh start` starts one on loopback; .ci/run does that before the tests.
/// </summary>
public static class RabbitMqServer
{
    public const string StartCommand = "eng/rabbitmq.sh install && eng/rabbitmq.sh start";

    private static readonly Lazy<bool> Reachable = new(Probe);

    public static string ConnectionString { get; } =
        Environment.GetEnvironmentVariable("MQ_RABBITMQ_URL") is { Length: > 0 } url ? url : "amqp://guest:guest@127.0.0.1:5672/";

    /// <summary>True under CI (CI=true), where a missing server is a failure rather than a reason to skip.</summary>
    public static bool Required => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Why RabbitMQ tests cannot run here, or null when they can (or must, under CI).</summary>
    public static string? SkipReason =>
        Required || Reachable.Value
            ? null
            : $"No RabbitMQ server answers at {ConnectionString}. Start one with `{StartCommand}` (or set MQ_RABBITMQ_URL), then run the tests again.";

    public static RabbitMqOptions Options(string clientName = "tests") => new() { ConnectionString = ConnectionString, ClientName = clientName };

    private static bool Probe()
    {
        var uri = new Uri(ConnectionString);
        using var client = new TcpClient();
        try
        {
            return client.ConnectAsync(uri.Host, uri.Port > 0 ? uri.Port : 5672).Wait(TimeSpan.FromSeconds(2)) && client.Connected;
        }
        catch (AggregateException)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
