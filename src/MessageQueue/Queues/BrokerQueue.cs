namespace MessageQueue;

/// <summary>
/// The untyped face of a queue, for the broker's registry, snapshots and shutdown. The typed work
/// happens in <see cref="BrokerQueue{T}"/>.
/// </summary>
internal abstract class BrokerQueue
{
    protected BrokerQueue(string name, Type payloadType, QueueOptions options, bool isDeadLetterQueue)
    {
        Name = name;
        PayloadType = payloadType;
        Options = options;
        IsDeadLetterQueue = isDeadLetterQueue;
    }

    public string Name { get; }

    public Type PayloadType { get; }

    /// <summary>A private copy of the options the queue was declared with.</summary>
    public QueueOptions Options { get; }

    public bool IsDeadLetterQueue { get; }

    // Volatile: set before the queue is published to publishers, cleared by a later DeclareQueue on any thread.
    private volatile bool _autoDeclared;

    /// <summary>
    /// Whether the queue was declared on first use (<see cref="BrokerOptions.AutoDeclareQueues"/>) and not declared
    /// since with <see cref="Broker.DeclareQueue{T}(string, QueueOptions?)"/>. Its name came from a publish or subscribe
    /// call, so it may be a typo: the first message that routes nowhere there is logged as a warning.
    /// </summary>
    public bool AutoDeclared
    {
        get => _autoDeclared;
        set => _autoDeclared = value;
    }

    /// <summary>
    /// Publishes a payload whose static type is not the queue's type but converts to it, such as a
    /// string into a queue of <see cref="object"/>. Not on the hot path.
    /// </summary>
    public abstract ValueTask<PublishReceipt> PublishConvertedAsync<TIn>(string eventName, TIn payload, in PublishOptions options, CancellationToken cancellationToken);

    public abstract bool TryPublishConverted<TIn>(string eventName, TIn payload, in PublishOptions options, out PublishReceipt receipt);

    /// <summary>Refuses further publishes and fails publishers that are waiting for room.</summary>
    public abstract void Close();

    /// <summary>Whether the queue is kept in the broker's store: its publish completes only after a commit.</summary>
    public abstract bool IsDurable { get; }

    public abstract bool DeleteSubscription(string name);

    /// <summary>Moves dead letters back into this (source) queue; see <see cref="Broker.ReplayDeadLettersAsync"/>.</summary>
    public abstract ValueTask<int> ReplayDeadLettersAsync(string? filter, int maxMessages, CancellationToken cancellationToken);

    public abstract QueueSnapshot GetSnapshot();

    /// <summary>Durable queues, on the store's writer thread before each batch: posts the subscription cursors that moved.</summary>
    internal virtual void PostCursors()
    {
    }
}
