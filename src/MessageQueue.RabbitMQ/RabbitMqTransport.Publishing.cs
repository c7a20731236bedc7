using System.Globalization;
using System.Text.Json;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MessageQueue.RabbitMQ;

// Publishing: checking and serializing a message, giving it its sequence and properties, and sending it with a publisher confirm (which a subscription's dead letters go through too).
public sealed partial class RabbitMqTransport
{
    // ---------------------------------------------------------------- publishing

    /// <inheritdoc/>
    public async ValueTask<PublishReceipt> PublishAsync<T>(string queue, string eventName, T payload, PublishOptions options = default, CancellationToken cancellationToken = default)
    {
        MessageRules.ThrowIfInvalidQueueName(queue);
        MessageRules.ThrowIfInvalidEventName(eventName);
        MessageRules.ThrowIfNullPayload(payload, queue, eventName);
        ThrowIfDisposed();
        if (options.DeliverAfter is not null || options.NotBefore is not null)
        {
            throw new NotSupportedException(
                "Delayed delivery (PublishOptions.DeliverAfter, NotBefore) is not available on RabbitMQ without a plugin; publish when the message is due, or use the in-memory broker.");
        }

        if (options.TimeToLive is { } ttl && ttl <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), ttl, "PublishOptions.TimeToLive must be positive.");
        }

        byte[] body = JsonSerializer.SerializeToUtf8Bytes(payload, _json);
        TimeSpan limit = options.Timeout ?? _options.PublishTimeout;
        await EnsureQueueAsync(queue, limit, cancellationToken).ConfigureAwait(false);

        Guid id = options.MessageId ?? Guid.NewGuid();
        long sequence = Interlocked.Increment(ref _sequences.GetOrAdd(queue, static _ => new StrongBox()).Value);
        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (options.Headers is { } custom)
        {
            foreach (KeyValuePair<string, string> header in custom)
            {
                headers[header.Key] = header.Value;
            }
        }

        headers[Topology.SequenceHeader] = sequence.ToString(CultureInfo.InvariantCulture);
        var properties = new BasicProperties
        {
            MessageId = id.ToString("N"),
            ContentType = "application/json",
            DeliveryMode = DeliveryModes.Persistent,
            Timestamp = new AmqpTimestamp(_options.TimeProvider.GetUtcNow().ToUnixTimeSeconds()),
            Headers = headers,
        };
        if (options.TimeToLive is { } timeToLive)
        {
            properties.Expiration = Math.Max(1, (long)timeToLive.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        }

        await SendAsync(queue, eventName, properties, body, limit, cancellationToken).ConfigureAwait(false);
        return new PublishReceipt(queue, id, sequence);
    }

    /// <summary>Publishes with a confirm: completes when RabbitMQ has the message, throws otherwise.</summary>
    internal async Task SendAsync(string exchange, string routingKey, BasicProperties properties, ReadOnlyMemory<byte> body, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        TimeSpan limit = timeout ?? _options.PublishTimeout;
        using var timer = new CancellationTokenSource(limit, _options.TimeProvider);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        IChannel channel;
        while (true)
        {
            ThrowIfDisposed();
            Link link;
            try
            {
                // While the connection is down, wait for it to come back, within the publish's timeout.
                link = await _connected.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException(
                    $"The connection to RabbitMQ is down and did not come back within {limit}: the message to '{exchange}' ('{routingKey}') was not published. Publish it again later.");
            }

            IChannel publish = link.Publish;
            if (publish.IsOpen)
            {
                channel = publish;
                break;
            }

            if (link.Connection.IsOpen && !link.Lost)
            {
                // Only the publish channel closed (the server refused something on it): open another on the same connection.
                await link.ReopenPublishAsync(publish, deadline.Token).ConfigureAwait(false);
                _declared.Clear();
                continue;
            }

            // Closed before anything was sent on it (the shutdown event may not have been handled yet): the message
            // is certainly not on the server, so wait for the next connection rather than fail.
            LinkLost(link, link.Connection.CloseReason?.ReplyText ?? "the channel closed", null);
        }

        try
        {
            await channel.BasicPublishAsync(exchange, routingKey, mandatory: false, properties, body, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"RabbitMQ did not confirm the publish to '{exchange}' ('{routingKey}') within {limit}; the message may or may not be on the server. Publish it again (with the same PublishOptions.MessageId if consumers deduplicate).");
        }
        catch (PublishException error)
        {
            throw new InvalidOperationException(
                $"RabbitMQ refused the publish to '{exchange}' ('{routingKey}'): it sent a negative acknowledgement. The message is not on the server; publish it again.",
                error);
        }
        catch (Exception error) when (error is AlreadyClosedException or OperationInterruptedException or IOException or ObjectDisposedException)
        {
            ThrowIfDisposed();
            throw new InvalidOperationException(
                $"The connection to RabbitMQ was lost before it confirmed the publish to '{exchange}' ('{routingKey}'); the message may or may not be on the server. Publish it again (with the same PublishOptions.MessageId if consumers deduplicate) once the transport has reconnected.",
                error);
        }
    }

    private sealed class StrongBox
    {
        public long Value;
    }
}
