using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MessageQueue.RabbitMQ;

// Subscribing, and declaring a queue's RabbitMQ objects (its exchange, dead-letter exchange and retained dead-letter queue), which publishing waits for too.
public sealed partial class RabbitMqTransport
{
    // ---------------------------------------------------------------- subscribing

    /// <inheritdoc/>
    public async ValueTask<Subscription<T>> SubscribeAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options = null, CancellationToken cancellationToken = default)
    {
        MessageRules.ThrowIfInvalidQueueName(queue, allowDeadLetterQueue: true);
        ArgumentNullException.ThrowIfNull(filters);
        string[] list = [.. filters];
        if (list.Length == 0)
        {
            throw new ArgumentException("Pass at least one filter ('#' matches every event).", nameof(filters));
        }

        foreach (string filter in list)
        {
            MessageRules.ThrowIfInvalidFilter(filter, nameof(filters));
        }

        SubscriptionOptions settings = options ?? new SubscriptionOptions();
        RabbitMqSubscription<T>.Validate(settings);
        ThrowIfDisposed();
        await EnsureQueueAsync(queue, _options.ConnectTimeout, cancellationToken).ConfigureAwait(false);

        Link link = await WhenConnectedAsync(_options.ConnectTimeout, $"the subscription to '{queue}'", cancellationToken).ConfigureAwait(false);
        RabbitMqSubscription<T> subscription = await RabbitMqSubscription<T>.StartAsync(this, link.Connection, link.Generation, queue, list, settings, cancellationToken).ConfigureAwait(false);
        _subscriptions.TryAdd(subscription, 0);
        _ = subscription.Completion.ContinueWith(
            static (_, state) => ((RabbitMqSubscription<T>)state!).Owner._subscriptions.TryRemove((RabbitMqSubscription<T>)state, out byte _),
            subscription,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

        // Disposed meanwhile: DisposeAsync may have taken its list of subscriptions before this one was in it.
        if (_disposing.IsCancellationRequested)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
            ThrowIfDisposed();
        }

        return subscription;
    }

    // ---------------------------------------------------------------- declaring queues

    /// <summary>
    /// Declares a queue: its topic exchange, its dead-letter exchange and the retained dead-letter queue. Publishing
    /// and subscribing declare a queue on first use too; declaring it first only moves that round trip earlier.
    /// </summary>
    /// <param name="queue">The queue's name, as for the in-memory broker.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when RabbitMQ has the queue's objects.</returns>
    /// <exception cref="TimeoutException">The connection is down and did not come back within <see cref="RabbitMqOptions.ConnectTimeout"/>.</exception>
    public Task DeclareQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        MessageRules.ThrowIfInvalidQueueName(queue, allowDeadLetterQueue: true);
        ThrowIfDisposed();
        return EnsureQueueAsync(queue, _options.ConnectTimeout, cancellationToken);
    }

    /// <summary>
    /// Declares the exchange of a queue (and, for a queue that is not a dead-letter queue, its dead-letter exchange and
    /// retained queue), once per connection. Waits for the connection within <paramref name="timeout"/>.
    /// </summary>
    internal Task EnsureQueueAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task declared = _declared.GetOrAdd(queue, name => new Lazy<Task>(() => DeclareCoreAsync(name))).Value;
        return WaitForConnectionAsync(declared, timeout, $"queue '{queue}' could not be declared, and what needed it (a publish, a subscribe) did not happen", cancellationToken);
    }

    /// <summary>
    /// Declares on a channel of its own, so that a refusal (a queue that exists with other arguments) closes only that
    /// channel and reaches the caller, never the shared publish channel.
    /// </summary>
    private async Task DeclareCoreAsync(string queue)
    {
        try
        {
            Link link = await _connected.Task.ConfigureAwait(false);
            IChannel channel = await link.Connection.CreateChannelAsync().ConfigureAwait(false);
            try
            {
                await channel.ExchangeDeclareAsync(queue, ExchangeType.Topic, durable: true, autoDelete: false).ConfigureAwait(false);
                string deadLetters = Topology.DeadLetterExchange(queue);
                await channel.ExchangeDeclareAsync(deadLetters, ExchangeType.Topic, durable: true, autoDelete: false).ConfigureAwait(false);
                await channel.QueueDeclareAsync(deadLetters, durable: true, exclusive: false, autoDelete: false, arguments: Topology.DeadLetterQueueArguments(_options.MaxDeadLetters)).ConfigureAwait(false);
                await channel.QueueBindAsync(deadLetters, deadLetters, "#").ConfigureAwait(false);
                await channel.CloseAsync().ConfigureAwait(false);
            }
            catch (OperationInterruptedException error) when (error.ShutdownReason?.ReplyCode == 406)
            {
                throw new InvalidOperationException(
                    $"RabbitMQ refused to declare queue '{queue}': an object of the same name exists with other settings ({error.ShutdownReason.ReplyText}). " +
                    "Use the same RabbitMqOptions.MaxDeadLetters as the transports that declared it, or delete the RabbitMQ objects first.",
                    error);
            }
            finally
            {
                await channel.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch
        {
            // Let the next call try again.
            _declared.TryRemove(queue, out _);
            throw;
        }
    }
}
