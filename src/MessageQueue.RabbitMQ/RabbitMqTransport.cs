using System.Collections.Concurrent;
using System.Text.Json;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MessageQueue.RabbitMQ;

/// <summary>
/// The MessageQueue publisher and subscriber contracts on a RabbitMQ server: code written against
/// <see cref="IPublisher"/> and <see cref="ISubscriber"/> runs unchanged. A queue is a durable topic exchange,
/// an event is a routing key, a durable subscription is a quorum queue bound with the subscription's filters,
/// and an ephemeral subscription is an exclusive queue that RabbitMQ deletes when its consumer leaves.
/// </summary>
/// <remarks>
/// <para>A publish completes when RabbitMQ has confirmed the message (publisher confirms), so a completed publish
/// is on the server; it throws when the server refuses it, the connection is lost, or no confirm comes within
/// <see cref="RabbitMqOptions.PublishTimeout"/>. It never reports success for a message the server did not
/// confirm.</para>
/// <para>One transport is one connection and one client identity. Disposing it closes the connection: every
/// subscription it made completes, and what they held unacked goes back to RabbitMQ.</para>
/// <para>When the connection is lost, <see cref="ConnectionLost"/> is raised and the transport reconnects with
/// backoff (<see cref="RabbitMqOptions.ReconnectDelays"/>), then raises <see cref="Reconnected"/>. Durable
/// subscriptions consume again on the new connection: what they held unacked comes again from RabbitMQ, and a
/// settle of a delivery from the lost connection returns false. Ephemeral subscriptions end, their
/// <see cref="Subscription.Completion"/> faulted with <see cref="SubscriptionClosedException"/>
/// (<see cref="SubscriptionCloseReason.ConnectionLost"/>), because RabbitMQ deletes their queues with the
/// connection. A publish while the connection is down waits for it, within its timeout.</para>
/// <para>Create one with <see cref="ConnectAsync"/>.</para>
/// </remarks>
public sealed partial class RabbitMqTransport : ITransport, IDisposable
{
    private readonly RabbitMqOptions _options;
    private readonly ConnectionFactory _factory;
    private readonly JsonSerializerOptions _json;
    private readonly Lock _linkGate = new();
    private readonly CancellationTokenSource _disposing = new();
    private Link? _link;

    // Completed while connected; replaced by a pending one when the connection is lost.
    private TaskCompletionSource<Link> _connected;
    private readonly ConcurrentDictionary<string, Lazy<Task>> _declared = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox> _sequences = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Subscription, byte> _subscriptions = new();
    private int _disposed;

    private RabbitMqTransport(RabbitMqOptions options, ConnectionFactory factory, Link link)
    {
        _options = options;
        _factory = factory;
        _json = options.JsonSerializerOptions ?? JsonSerializerOptions.Default;
        _link = link;
        _connected = new TaskCompletionSource<Link>(TaskCreationOptions.RunContinuationsAsynchronously);
        _connected.SetResult(link);
        Watch(link);
    }

    /// <summary>Gets <c>"rabbitmq"</c>, the OpenTelemetry messaging.system of this transport.</summary>
    public string MessagingSystem => "rabbitmq";

    /// <summary>
    /// Creates a transport that connects in the background, retrying with <see cref="RabbitMqOptions.ReconnectDelays"/>
    /// until the server answers. Publishes and subscribes wait for the connection (a publish within its timeout, a
    /// subscribe within <see cref="RabbitMqOptions.ConnectTimeout"/>). This is how the DI registration
    /// (<c>UseRabbitMq</c>) creates it; <see cref="ConnectAsync"/> connects first and fails at once instead.
    /// </summary>
    /// <param name="options">Where to connect and how; null for the defaults (a local server, guest user).</param>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    public RabbitMqTransport(RabbitMqOptions? options = null)
    {
        _options = (options ?? new RabbitMqOptions()).Clone();
        _options.Validate();
        _factory = CreateFactory(_options);
        _json = _options.JsonSerializerOptions ?? JsonSerializerOptions.Default;
        _connected = new TaskCompletionSource<Link>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Task.Run(() => ConnectLoopAsync(lost: null));
    }

    /// <summary>The client's name (<see cref="RabbitMqOptions.ClientName"/>), also the connection's name in RabbitMQ.</summary>
    public string ClientName => _options.ClientName;

    /// <summary>Connects to RabbitMQ.</summary>
    /// <param name="options">Where to connect and how; null for the defaults (a local server, guest user).</param>
    /// <param name="cancellationToken">Cancels the connection attempt.</param>
    /// <returns>The connected transport.</returns>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    /// <exception cref="BrokerUnreachableException">No RabbitMQ server answered at <see cref="RabbitMqOptions.ConnectionString"/>.</exception>
    public static async Task<RabbitMqTransport> ConnectAsync(RabbitMqOptions? options = null, CancellationToken cancellationToken = default)
    {
        RabbitMqOptions settings = (options ?? new RabbitMqOptions()).Clone();
        settings.Validate();
        ConnectionFactory factory = CreateFactory(settings);
        Link link = await OpenAsync(factory, generation: 1, cancellationToken).ConfigureAwait(false);
        link.Established = true;
        return new RabbitMqTransport(settings, factory, link);
    }

    private static ConnectionFactory CreateFactory(RabbitMqOptions options) => new()
    {
        Uri = new Uri(options.ConnectionString),
        ClientProvidedName = options.ClientName,
        // The transport reconnects itself, so that it can tell subscriptions and resume them in order.
        AutomaticRecoveryEnabled = false,
        TopologyRecoveryEnabled = false,
    };

    internal RabbitMqOptions Options => _options;

    internal JsonSerializerOptions Json => _json;

    // ---------------------------------------------------------------- lifetime

    /// <summary>
    /// Closes the connection as <see cref="DisposeAsync"/> does, blocking the calling thread until that completes. Prefer
    /// <see cref="DisposeAsync"/>; this is for callers that can only dispose synchronously, such as a service
    /// provider disposed with <c>using</c> rather than <c>await using</c>.
    /// </summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>
    /// Closes the connection. Every subscription made through this transport completes (successfully: its owner
    /// asked for it), and what it held unacked goes back to RabbitMQ, to be delivered again. Returns promptly while
    /// the connection is down, too.
    /// </summary>
    /// <returns>A task that completes when the connection is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Link? link;
        lock (_linkGate)
        {
            // _disposed is set: a reconnection that completes after this closes its own new connection.
            link = _link;
            _connected.TrySetException(new ObjectDisposedException(nameof(RabbitMqTransport)));
        }

        await _disposing.CancelAsync().ConfigureAwait(false);

        foreach (Subscription subscription in _subscriptions.Keys)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }

        if (link is not null)
        {
            await link.CloseAsync().ConfigureAwait(false);
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
