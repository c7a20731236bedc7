using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace MessageQueue.RabbitMQ;

// The connection: waiting for it, opening it with its publish channel (the Link), noticing its loss, reconnecting with backoff, resuming durable subscriptions, and the events that tell of it.
public sealed partial class RabbitMqTransport
{
    // ---------------------------------------------------------------- connection

    /// <summary>
    /// Raised when the connection to RabbitMQ is lost (the server stopped, the network failed). The transport is
    /// already reconnecting. Raised on the thread pool; an exception from a handler is ignored.
    /// </summary>
    public event EventHandler<RabbitMqConnectionEventArgs>? ConnectionLost;

    /// <summary>
    /// Raised when the transport has connected again after <see cref="ConnectionLost"/>, once durable subscriptions
    /// consume again. Raised on the thread pool; an exception from a handler is ignored.
    /// </summary>
    public event EventHandler<RabbitMqConnectionEventArgs>? Reconnected;

    /// <summary>Whether the transport is connected now.</summary>
    public bool IsConnected => _connected.Task.IsCompletedSuccessfully;

    /// <summary>The connection, waiting for it while it is down, up to <paramref name="timeout"/>.</summary>
    private async Task<Link> WhenConnectedAsync(TimeSpan timeout, string operation, CancellationToken cancellationToken)
    {
        Task<Link> connected = _connected.Task;
        await WaitForConnectionAsync(connected, timeout, $"{operation} did not happen", cancellationToken).ConfigureAwait(false);
        return await connected.ConfigureAwait(false);
    }

    /// <summary>Waits for <paramref name="task"/>, which needs the connection; a timeout says what did not happen and why.</summary>
    private async Task WaitForConnectionAsync(Task task, TimeSpan timeout, string consequence, CancellationToken cancellationToken)
    {
        if (task.IsCompletedSuccessfully)
        {
            return;
        }

        try
        {
            await task.WaitAsync(timeout, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException(
                $"No connection to RabbitMQ at {_factory.Endpoint} within {timeout}, so {consequence}. Check that the server is running and reachable (RabbitMqOptions.ConnectionString); the transport keeps trying to connect.");
        }
    }

    private static async Task<Link> OpenAsync(ConnectionFactory factory, int generation, CancellationToken cancellationToken)
    {
        IConnection connection = await factory.CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return new Link(connection, await OpenPublishChannelAsync(connection, cancellationToken).ConfigureAwait(false), generation);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static Task<IChannel> OpenPublishChannelAsync(IConnection connection, CancellationToken cancellationToken) =>
        connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true, outstandingPublisherConfirmationsRateLimiter: null),
            cancellationToken);

    /// <summary>True when the connection of <paramref name="generation"/> is gone (lost or replaced).</summary>
    internal bool IsConnectionLost(int generation)
    {
        Link? link = _link;
        return link is null || link.Generation != generation || link.Lost || !link.Connection.IsOpen;
    }

    private void Watch(Link link) =>
        link.Connection.ConnectionShutdownAsync += (_, reason) => OnConnectionShutdownAsync(link, reason);

    private Task OnConnectionShutdownAsync(Link link, ShutdownEventArgs reason)
    {
        if (reason.Initiator != ShutdownInitiator.Application)
        {
            LinkLost(link, $"{reason.ReplyCode} {reason.ReplyText}".Trim(), reason.Cause as Exception);
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// The connection of <paramref name="link"/> is gone. If it was in use, publishes from now on wait for the next
    /// one; subscriptions are told, <see cref="ConnectionLost"/> is raised and reconnecting starts, once per
    /// connection. A connection lost while it was still being set up is the reconnect loop's to notice.
    /// </summary>
    private void LinkLost(Link link, string why, Exception? cause)
    {
        lock (_linkGate)
        {
            if (link.Lost)
            {
                return;
            }

            link.Lost = true;
            if (Volatile.Read(ref _disposed) != 0 || link != _link || !link.Established)
            {
                return;
            }

            _connected = new TaskCompletionSource<Link>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        // Every declaration is checked again on the next connection (the server may have lost its definitions).
        _declared.Clear();
        foreach (Subscription subscription in _subscriptions.Keys)
        {
            ((IResumable)subscription).OnConnectionLost(why);
        }

        Raise(ConnectionLost, new RabbitMqConnectionEventArgs(cause ?? new IOException($"The connection to RabbitMQ was lost: {why}."), attempts: 0));
        _ = Task.Run(() => ConnectLoopAsync(link));
    }

    /// <summary>
    /// Connects (again, after <paramref name="lost"/>) with backoff until it works or the transport is disposed; then
    /// resumes durable subscriptions. The first connection of a transport created with the constructor tries at once.
    /// A connection lost while subscriptions resume on it is replaced in turn, within the same loop.
    /// </summary>
    private async Task ConnectLoopAsync(Link? lost)
    {
        IList<TimeSpan> delays = _options.ReconnectDelays;
        int attempt = 0;
        if (lost is not null)
        {
            await lost.CloseAsync().ConfigureAwait(false);
        }

        int generation = lost?.Generation ?? 0;
        while (!_disposing.IsCancellationRequested)
        {
            TimeSpan delay = lost is null && attempt == 0 ? TimeSpan.Zero
                : delays.Count == 0 ? TimeSpan.Zero
                : delays[Math.Min(lost is null ? attempt - 1 : attempt, delays.Count - 1)];
            attempt++;
            Link? link = null;
            try
            {
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, _options.TimeProvider, _disposing.Token).ConfigureAwait(false);
                }

                link = await OpenAsync(_factory, ++generation, _disposing.Token).ConfigureAwait(false);
                lock (_linkGate)
                {
                    if (Volatile.Read(ref _disposed) == 0)
                    {
                        _link = link;
                    }
                }

                if (_link != link)
                {
                    // Disposed while this connection opened.
                    await link.CloseAsync().ConfigureAwait(false);
                    return;
                }

                Watch(link);
                foreach (Subscription subscription in _subscriptions.Keys)
                {
                    if (subscription is IResumable { IsDurable: true } resumable)
                    {
                        await resumable.ResumeAsync(link.Connection, link.Generation).ConfigureAwait(false);
                    }
                }

                lock (_linkGate)
                {
                    if (!link.Lost && link.Connection.IsOpen && Volatile.Read(ref _disposed) == 0)
                    {
                        link.Established = true;
                        _connected.TrySetResult(link);
                        link = null;
                    }
                }

                if (link is null)
                {
                    if (lost is not null)
                    {
                        Raise(Reconnected, new RabbitMqConnectionEventArgs(null, attempt));
                    }

                    return;
                }

                // Lost again before it was in use: tell the subscriptions that resumed on it, and try once more.
                link.Lost = true;
                foreach (Subscription subscription in _subscriptions.Keys)
                {
                    ((IResumable)subscription).OnConnectionLost("the connection was lost again while subscriptions resumed");
                }
            }
            catch (OperationCanceledException) when (_disposing.IsCancellationRequested)
            {
                break;
            }
            catch (Exception error) when (error is not OutOfMemoryException)
            {
                // Not back yet (refused, timed out, closed halfway): the next step of the backoff.
            }

            if (link is not null)
            {
                await link.CloseAsync().ConfigureAwait(false);
            }
        }

        // Disposed while connecting: a connection opened meanwhile (and perhaps never published) is closed here.
        Link? last = _link;
        if (last is not null && !last.Established && Volatile.Read(ref _disposed) != 0)
        {
            await last.CloseAsync().ConfigureAwait(false);
        }
    }

    private void Raise(EventHandler<RabbitMqConnectionEventArgs>? handler, RabbitMqConnectionEventArgs args)
    {
        if (handler is null)
        {
            return;
        }

        _ = Task.Run(() =>
        {
            try
            {
                handler(this, args);
            }
            catch (Exception error) when (error is not OutOfMemoryException)
            {
                // A handler's failure is its own; the transport carries on.
            }
        });
    }

    /// <summary>One connection and its publish channel. Closed once, whoever gets there first.</summary>
    private sealed class Link(IConnection connection, IChannel publish, int generation)
    {
        private readonly Lock _gate = new();
        private Task? _reopening;
        private int _closed;

        public IConnection Connection { get; } = connection;

        public IChannel Publish { get; private set; } = publish;

        public int Generation { get; } = generation;

        /// <summary>The connection is gone; set under the transport's link lock.</summary>
        public bool Lost { get; set; }

        /// <summary>Handed out as the transport's connection; set under the transport's link lock.</summary>
        public bool Established { get; set; }

        /// <summary>Replaces a publish channel that closed while the connection stayed up; one reopening at a time.</summary>
        public Task ReopenPublishAsync(IChannel closed, CancellationToken cancellationToken)
        {
            Task reopening;
            lock (_gate)
            {
                if (Publish != closed || Volatile.Read(ref _closed) != 0)
                {
                    return Task.CompletedTask;
                }

                reopening = _reopening ??= ReopenCoreAsync(closed);
            }

            return reopening.WaitAsync(cancellationToken);
        }

        private async Task ReopenCoreAsync(IChannel closed)
        {
            try
            {
                Publish = await OpenPublishChannelAsync(Connection, CancellationToken.None).ConfigureAwait(false);
                await closed.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                lock (_gate)
                {
                    _reopening = null;
                }
            }
        }

        public async Task CloseAsync()
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0)
            {
                return;
            }

            try
            {
                await Publish.CloseAsync().ConfigureAwait(false);
                await Connection.CloseAsync().ConfigureAwait(false);
            }
            catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or IOException or ObjectDisposedException)
            {
                // Lost before it was closed: there is nothing left to close.
            }

            await Publish.DisposeAsync().ConfigureAwait(false);
            await Connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
