namespace MessageQueue.DependencyInjection;

/// <summary>A queue the broker declares when it is created: its payload type from code, its options from code and configuration.</summary>
internal sealed class QueueDeclaration(string name)
{
    private Action<Broker, string, QueueOptions>? _declare;

    public string Name { get; } = name;

    public QueueOptions Options { get; } = new();

    /// <summary>Whether options were given for it (a configure callback in code, or settings in configuration).</summary>
    public bool OptionsGiven { get; set; }

    /// <summary>Null while the queue was only named in configuration.</summary>
    public Type? PayloadType { get; private set; }

    /// <summary>A second declaration with another payload type; reported on validation.</summary>
    public Type? ConflictingType { get; private set; }

    public void SetPayloadType(Type payloadType, Action<Broker, string, QueueOptions> declare)
    {
        if (PayloadType is not null && PayloadType != payloadType)
        {
            ConflictingType = payloadType;
            return;
        }

        PayloadType = payloadType;
        _declare = declare;
    }

    public void Declare(Broker broker)
    {
        if (_declare is null)
        {
            // The validator reports this before a broker is created; this guards the invariant.
            throw new InvalidOperationException($"Queue '{Name}' has no payload type; declare it with DeclareQueue<T>(\"{Name}\").");
        }

        _declare(broker, Name, Options);
    }
}
