using System.Text.Json;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace MessageQueue.RabbitMQ;

/// <summary>A subscription's intake: declaring and binding its RabbitMQ queue, consuming from it, and turning each AMQP delivery into a message in the local buffer.</summary>
internal sealed partial class RabbitMqSubscription<T>
{
    // ---------------------------------------------------------------- receiving

    private async Task ConsumeAsync(Lease lease, CancellationToken cancellationToken)
    {
        IChannel channel = lease.Channel;
        await channel.BasicQosAsync(0, (ushort)Math.Min(_options.MaxInFlight, ushort.MaxValue), global: false, cancellationToken).ConfigureAwait(false);
        string rabbitQueue;
        try
        {
            if (_durable)
            {
                rabbitQueue = Topology.DurableQueueName(Queue, _options.Name!);
                await channel.QueueDeclareAsync(rabbitQueue, durable: true, exclusive: false, autoDelete: false, Topology.DurableQueueArguments(Queue, _options), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            else
            {
                QueueDeclareOk declared = await channel.QueueDeclareAsync(string.Empty, durable: false, exclusive: true, autoDelete: true, Topology.EphemeralQueueArguments(Queue), cancellationToken: cancellationToken).ConfigureAwait(false);
                rabbitQueue = declared.QueueName;
            }

            foreach (string filter in Filters)
            {
                await channel.QueueBindAsync(rabbitQueue, Queue, filter, cancellationToken: cancellationToken).ConfigureAwait(false);
            }

            var consumer = new AsyncEventingBasicConsumer(channel);
            consumer.ReceivedAsync += (_, delivery) => OnReceivedAsync(lease, delivery);
            consumer.UnregisteredAsync += (_, _) => OnConsumerCancelledAsync(lease);
            channel.ChannelShutdownAsync += (_, reason) => OnChannelShutdownAsync(lease, reason);
            await channel.BasicConsumeAsync(rabbitQueue, autoAck: false, consumerTag: string.Empty, noLocal: false, exclusive: _options.Exclusive == ExclusiveMode.Reject, arguments: null, consumer, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationInterruptedException error) when (error.ShutdownReason?.ReplyCode == 403 && _options.Exclusive == ExclusiveMode.Reject)
        {
            throw new SubscriptionInUseException(Queue, _options.Name!, "another RabbitMQ consumer", 0,
                $"The durable subscription '{_options.Name}' on queue '{Queue}' already has a consumer and was subscribed with ExclusiveMode.Reject. Wait for that consumer to leave, or use ExclusiveMode.Standby to take over when it does.");
        }
        catch (OperationInterruptedException error) when (error.ShutdownReason?.ReplyCode == 406)
        {
            throw new InvalidOperationException(
                $"The durable subscription '{_options.Name}' on queue '{Queue}' exists on RabbitMQ with other settings ({error.ShutdownReason.ReplyText}). " +
                "Its MaxDeliveries and Exclusive (Standby) are fixed when RabbitMQ creates the queue: subscribe with the same settings, or delete the RabbitMQ queue first.",
                error);
        }
    }

    private async Task OnReceivedAsync(Lease lease, BasicDeliverEventArgs delivery)
    {
        try
        {
            await ReceiveAsync(lease, delivery).ConfigureAwait(false);
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            // Nothing may escape into the client's dispatcher. A delivery that could not be taken in goes to RabbitMQ's
            // dead-letter exchange (reason "rejected"), never silently away.
            await TrySendAsync(requeue: false, Token(lease.Generation, delivery.DeliveryTag)).ConfigureAwait(false);
        }
    }

    private async Task ReceiveAsync(Lease lease, BasicDeliverEventArgs delivery)
    {
        IReadOnlyBasicProperties properties = delivery.BasicProperties;
        Dictionary<string, string> headers = Topology.ReadHeaders(properties, out long sequence, out int deliveryCount);
        Guid id = Guid.TryParse(properties.MessageId, out Guid parsed) ? parsed : Guid.Empty;
        int attempt = (_durable ? deliveryCount : _returns.GetValueOrDefault(id)) + 1;
        T payload;
        try
        {
            // The body is only valid inside this callback: it is read here, once.
            payload = JsonSerializer.Deserialize<T>(delivery.Body.Span, _owner.Json)!;
        }
        catch (JsonException error)
        {
            // Never delivered as something it is not: straight to the dead-letter queue, saying why.
            await DeadLetterRawAsync(lease, delivery, headers, sequence, attempt, $"The payload is not a {typeof(T).Name}: {error.Message}").ConfigureAwait(false);
            return;
        }

        DateTimeOffset timestamp = properties.IsTimestampPresent()
            ? DateTimeOffset.FromUnixTimeSeconds(properties.Timestamp.UnixTime)
            : _owner.Options.TimeProvider.GetUtcNow();
        var message = new Message<T>(id, Queue, delivery.RoutingKey, payload, sequence, timestamp, headers);

        // Never waits: RabbitMQ sends at most MaxInFlight unacked deliveries, and the buffer holds that many. If it is
        // full all the same (leftovers of a lost channel not yet read past), the delivery goes back rather than away.
        long token = Token(lease.Generation, delivery.DeliveryTag);
        if (!_incoming.Writer.TryWrite(new Incoming(message, token, attempt)))
        {
            await RequeueAsync(token, id).ConfigureAwait(false);
        }
    }
}
