namespace MessageQueue;

public sealed partial class Broker
{
    /// <inheritdoc/>
    public ValueTask<PublishReceipt> PublishAsync<T>(string queue, string eventName, T payload, PublishOptions options = default, CancellationToken cancellationToken = default) =>
        PublishCoreAsync(queue, eventName, payload, options, cancellationToken);

    /// <summary>Publishes if the queue has room now, without waiting.</summary>
    /// <typeparam name="T">The payload type; it must be the queue's payload type or convert to it.</typeparam>
    /// <param name="queue">The queue name.</param>
    /// <param name="eventName">The event name.</param>
    /// <param name="payload">The payload; not <see langword="null"/> (for an event with no data, publish an empty record).</param>
    /// <param name="receipt">The receipt, when the message was published.</param>
    /// <returns>
    /// <see langword="false"/> when the queue is full under <see cref="OverflowPolicy.Wait"/> or <see cref="OverflowPolicy.Reject"/>,
    /// and always on a durable queue (one kept in <see cref="BrokerOptions.Store"/>), whose publish completes only after a
    /// commit: use <see cref="PublishAsync{T}"/> there. Nothing was enqueued.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="queue"/>, <paramref name="eventName"/> or <paramref name="payload"/> is null.</exception>
    public bool TryPublish<T>(string queue, string eventName, T payload, out PublishReceipt receipt) =>
        TryPublishCore(queue, eventName, payload, default, out receipt);

    /// <summary>Publishes if the queue has room now, without waiting.</summary>
    /// <typeparam name="T">The payload type; it must be the queue's payload type or convert to it.</typeparam>
    /// <param name="queue">The queue name.</param>
    /// <param name="eventName">The event name.</param>
    /// <param name="payload">The payload; not <see langword="null"/> (for an event with no data, publish an empty record).</param>
    /// <param name="options">Headers for this publish; the timeout is ignored.</param>
    /// <param name="receipt">The receipt, when the message was published.</param>
    /// <returns>
    /// <see langword="false"/> when the queue is full under <see cref="OverflowPolicy.Wait"/> or <see cref="OverflowPolicy.Reject"/>,
    /// and always on a durable queue (one kept in <see cref="BrokerOptions.Store"/>), whose publish completes only after a
    /// commit: use <see cref="PublishAsync{T}"/> there. Nothing was enqueued.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="queue"/>, <paramref name="eventName"/> or <paramref name="payload"/> is null.</exception>
    public bool TryPublish<T>(string queue, string eventName, T payload, in PublishOptions options, out PublishReceipt receipt) =>
        TryPublishCore(queue, eventName, payload, options, out receipt);

    internal ValueTask<PublishReceipt> PublishCoreAsync<T>(string queue, string eventName, T payload, in PublishOptions options, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(eventName);
        MessageRules.ThrowIfNullPayload(payload, queue, eventName);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<PublishReceipt>(cancellationToken);
        }

        if (_metrics.OperationDuration.Enabled || BrokerTelemetry.Source.HasListeners())
        {
            return PublishInstrumentedAsync(queue, eventName, payload, options, cancellationToken);
        }

        BrokerQueue target = GetQueueForPublish<T>(queue);
        return target is BrokerQueue<T> typed
            ? typed.PublishAsync(eventName, payload, options, cancellationToken)
            : target.PublishConvertedAsync(eventName, payload, options, cancellationToken);
    }

    /// <summary>
    /// A publish while someone listens: a producer span whose trace context travels in the message's headers, and the
    /// duration for messaging.client.operation.duration, failures included.
    /// </summary>
    private async ValueTask<PublishReceipt> PublishInstrumentedAsync<T>(string queue, string eventName, T payload, PublishOptions options, CancellationToken cancellationToken)
    {
        using PublishCall call = PublishCall.Start(_metrics, queue, eventName, ref options);
        try
        {
            BrokerQueue target = GetQueueForPublish<T>(queue);
            PublishReceipt receipt = target is BrokerQueue<T> typed
                ? await typed.PublishAsync(eventName, payload, options, cancellationToken).ConfigureAwait(false)
                : await target.PublishConvertedAsync(eventName, payload, options, cancellationToken).ConfigureAwait(false);
            call.Succeeded(receipt);
            return receipt;
        }
        catch (Exception error)
        {
            call.Failed(error);
            throw;
        }
    }

    internal bool TryPublishCore<T>(string queue, string eventName, T payload, in PublishOptions options, out PublishReceipt receipt)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(eventName);
        MessageRules.ThrowIfNullPayload(payload, queue, eventName);
        if (_metrics.OperationDuration.Enabled || BrokerTelemetry.Source.HasListeners())
        {
            return TryPublishInstrumented(queue, eventName, payload, options, out receipt);
        }

        BrokerQueue target = GetQueueForPublish<T>(queue);
        return target is BrokerQueue<T> typed
            ? typed.TryPublish(eventName, payload, options, out receipt)
            : target.TryPublishConverted(eventName, payload, options, out receipt);
    }

    /// <summary>
    /// A TryPublish while someone listens: the same producer span, trace context and duration as a publish. A full queue
    /// (false) sent nothing, so it is a failed publish, with <c>error.type</c> <see cref="QueueFullException"/>: what
    /// PublishAsync throws for a full queue under <see cref="OverflowPolicy.Reject"/> (under Wait it would wait instead).
    /// On a durable queue, which TryPublish always refuses, <c>error.type</c> is <c>durable_queue</c>.
    /// </summary>
    private bool TryPublishInstrumented<T>(string queue, string eventName, T payload, PublishOptions options, out PublishReceipt receipt)
    {
        using PublishCall call = PublishCall.Start(_metrics, queue, eventName, ref options);
        bool published;
        BrokerQueue target;
        try
        {
            target = GetQueueForPublish<T>(queue);
            published = target is BrokerQueue<T> typed
                ? typed.TryPublish(eventName, payload, options, out receipt)
                : target.TryPublishConverted(eventName, payload, options, out receipt);
        }
        catch (Exception error)
        {
            call.Failed(error);
            throw;
        }

        if (published)
        {
            call.Succeeded(receipt);
        }
        else if (target.IsDurable)
        {
            call.Refused("durable_queue", "The queue is durable: its publish completes only after a commit, which TryPublish cannot wait for; use PublishAsync. Nothing was published.");
        }
        else
        {
            call.Refused(typeof(QueueFullException).FullName!, "The queue is full; nothing was published.");
        }

        return published;
    }

    private BrokerQueue GetQueueForPublish<T>(string queue)
    {
        if (!Queues.TryGetValue(queue, out BrokerQueue? target))
        {
            Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
            target = GetOrAutoDeclare<T>(queue);
        }

        if (target.IsDeadLetterQueue)
        {
            throw new InvalidOperationException(
                $"Queue '{queue}' is a dead-letter queue; it only receives messages that consumers reject. Publish to the source queue instead.");
        }

        // A payload may be published into a queue of a base type or interface of its type (for
        // example a string into a queue of object); it is converted once, off the typed fast path.
        if (target is BrokerQueue<T> || target.PayloadType.IsAssignableFrom(typeof(T)))
        {
            return target;
        }

        throw PayloadMismatch(queue, target.PayloadType, typeof(T), paramName: "payload");
    }

    private static ArgumentException PayloadMismatch(string queue, Type queueType, Type given, string paramName) => new(
        $"Queue '{queue}' carries payloads of type {queueType.FullName}; a {given.FullName} does not fit. " +
        $"Publish a {queueType.Name}, or use a queue declared for {given.Name}.",
        paramName);
}
