using System.Globalization;
using System.Text.Json;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace MessageQueue.RabbitMQ;

/// <summary>A subscription's dead letters: the headers that say why and where from, and the confirmed publish to the queue's dead-letter exchange before the ack.</summary>
internal sealed partial class RabbitMqSubscription<T>
{
    // ---------------------------------------------------------------- dead-lettering

    /// <summary>
    /// Publishes a copy with the reason and history in headers to the queue's dead-letter exchange (confirmed), then
    /// acks the original. If the process dies between the two, the message is delivered again (at-least-once).
    /// </summary>
    private async Task<bool> DeadLetterAsync(long tag, Pending pending, string reason, string? detail)
    {
        Message<T> message = pending.Message;
        Dictionary<string, object?> headers = AmqpHeaders(DeadLetterHeaders.Create(message.Headers, Queue, Name, message.Sequence, pending.Attempt, reason, detail, _owner.Options.TimeProvider.GetUtcNow()));
        headers[Topology.SequenceHeader] = message.Sequence.ToString(CultureInfo.InvariantCulture);
        var properties = new BasicProperties
        {
            MessageId = message.Id.ToString("N"),
            ContentType = "application/json",
            DeliveryMode = DeliveryModes.Persistent,
            Timestamp = new AmqpTimestamp(message.Timestamp.ToUnixTimeSeconds()),
            Headers = headers,
        };
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(message.Payload, _owner.Json);
        try
        {
            await _owner.SendAsync(Topology.DeadLetterExchange(Queue), message.Event, properties, body, timeout: null, CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
            // Not dead-lettered: the delivery goes back to be delivered again rather than hold its prefetch slot.
            await RequeueAsync(tag, message.Id).ConfigureAwait(false);
            throw;
        }

        _returns.TryRemove(message.Id, out _);
        return await TrySendAsync(requeue: null, tag).ConfigureAwait(false);
    }

    /// <summary>Dead-letters a delivery whose payload could not be read, body and all, with the same headers as any dead letter.</summary>
    private async Task DeadLetterRawAsync(Lease lease, BasicDeliverEventArgs delivery, Dictionary<string, string> headers, long sequence, int attempt, string detail)
    {
        Dictionary<string, object?> copy = AmqpHeaders(DeadLetterHeaders.Create(headers, Queue, Name, sequence, attempt, DeadLetterReasons.Rejected, detail, _owner.Options.TimeProvider.GetUtcNow()));
        copy[Topology.SequenceHeader] = sequence.ToString(CultureInfo.InvariantCulture);
        IReadOnlyBasicProperties received = delivery.BasicProperties;
        var properties = new BasicProperties
        {
            MessageId = received.MessageId,
            ContentType = received.ContentType,
            DeliveryMode = DeliveryModes.Persistent,
            Headers = copy,
        };
        if (received.IsTimestampPresent())
        {
            properties.Timestamp = received.Timestamp;
        }

        await _owner.SendAsync(Topology.DeadLetterExchange(Queue), delivery.RoutingKey, properties, delivery.Body.ToArray(), timeout: null, CancellationToken.None).ConfigureAwait(false);
        await TrySendAsync(requeue: null, Token(lease.Generation, delivery.DeliveryTag)).ConfigureAwait(false);
    }

    /// <summary>Headers as AMQP carries them.</summary>
    private static Dictionary<string, object?> AmqpHeaders(Dictionary<string, string> headers)
    {
        var amqp = new Dictionary<string, object?>(headers.Count + 1, StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> header in headers)
        {
            amqp[header.Key] = header.Value;
        }

        return amqp;
    }
}
