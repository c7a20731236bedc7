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
        Dictionary<string, object?> headers = DeadLetterHeaders(message.Headers, reason, detail);
        headers[MessageHeaders.Attempts] = pending.Attempt.ToString(CultureInfo.InvariantCulture);
        headers[MessageHeaders.SourceSequence] = message.Sequence.ToString(CultureInfo.InvariantCulture);
        headers[MessageHeaders.DeadLetteredAt] = _owner.Options.TimeProvider.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);
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

    private async Task DeadLetterRawAsync(Lease lease, BasicDeliverEventArgs delivery, Dictionary<string, string> headers, string detail)
    {
        Dictionary<string, object?> copy = DeadLetterHeaders(headers, DeadLetterReasons.Rejected, detail);
        var properties = new BasicProperties
        {
            MessageId = delivery.BasicProperties.MessageId,
            ContentType = delivery.BasicProperties.ContentType,
            DeliveryMode = DeliveryModes.Persistent,
            Headers = copy,
        };
        await _owner.SendAsync(Topology.DeadLetterExchange(Queue), delivery.RoutingKey, properties, delivery.Body.ToArray(), timeout: null, CancellationToken.None).ConfigureAwait(false);
        await TrySendAsync(requeue: null, Token(lease.Generation, delivery.DeliveryTag)).ConfigureAwait(false);
    }

    /// <summary>A message's headers, with why and where from it was dead-lettered.</summary>
    private Dictionary<string, object?> DeadLetterHeaders(IReadOnlyDictionary<string, string> original, string reason, string? detail)
    {
        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> header in original)
        {
            headers[header.Key] = header.Value;
        }

        headers[MessageHeaders.DeadLetterReason] = reason;
        if (detail is not null)
        {
            headers[MessageHeaders.DeadLetterDetail] = detail;
        }

        headers[MessageHeaders.SourceQueue] = Queue;
        if (Name is not null)
        {
            headers[MessageHeaders.SourceSubscription] = Name;
        }

        return headers;
    }
}
