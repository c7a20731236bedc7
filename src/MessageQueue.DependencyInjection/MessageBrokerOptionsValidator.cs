using MessageQueue.Persistence;
using Microsoft.Extensions.Options;

namespace MessageQueue.DependencyInjection;

/// <summary>
/// Checks everything AddMessageBroker and AddMessageHandler configured, with the same checks the broker makes, and
/// reports every problem in one <see cref="OptionsValidationException"/>: when the host starts (ValidateOnStart),
/// or when the broker is first resolved without a host.
/// </summary>
internal sealed class MessageBrokerOptionsValidator : IValidateOptions<MessageBrokerOptions>
{
    public ValidateOptionsResult Validate(string? name, MessageBrokerOptions options)
    {
        var errors = new List<string>(options.ConfigurationErrors);
        ValidateBroker(options, errors);
        foreach (QueueDeclaration queue in options.Queues)
        {
            ValidateQueue(queue, options.QueuesBelongToTransport, errors);
        }

        var subscriptions = new HashSet<(string Queue, string Subscription)>();
        var undeclared = new Dictionary<string, HandlerRegistration>(StringComparer.Ordinal);
        foreach (HandlerRegistration handler in options.Handlers)
        {
            ValidateHandler(handler, options, subscriptions, errors);
            ValidateHandlerQueue(handler, options, undeclared, errors);
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidateBroker(MessageBrokerOptions options, List<string> errors)
    {
        BrokerOptions broker = options.Broker;
        if (options.StoreFactory is not null && broker.Store is null)
        {
            // The store is created with the broker, not now: check the rest as if it were there.
            broker = broker.Clone();
            broker.Store = PlaceholderStore.Instance;
        }

        AddAll(errors, "BrokerOptions", broker.GetErrors());
    }

    private static void ValidateQueue(QueueDeclaration queue, bool onTransport, List<string> errors)
    {
        string what = $"Queue '{queue.Name}'";
        if (onTransport && queue.OptionsGiven)
        {
            // Ignoring them would leave a user believing in a bound that does not exist.
            string payload = queue.PayloadType?.Name ?? "TPayload";
            errors.Add($"{what} has QueueOptions, but IPublisher and ISubscriber run on a transport (UseTransport), whose queues are bounded by the server's own policies, so they would be ignored; declare it with DeclareQueue<{payload}>(\"{queue.Name}\") and no options, and set its limits on the server.");
            return;
        }

        if (queue.PayloadType is null)
        {
            errors.Add($"{what} has settings in configuration but is not declared in code; declare it with DeclareQueue<TPayload>(\"{queue.Name}\") in AddMessageBroker, or remove it from configuration.");
        }

        if (queue.ConflictingType is { } other)
        {
            errors.Add($"{what} is declared twice, with payload types {queue.PayloadType!.Name} and {other.Name}; a queue has one payload type.");
        }

        AddAll(errors, what, queue.Options.GetErrors());
    }

    private static void ValidateHandler(HandlerRegistration handler, MessageBrokerOptions options, HashSet<(string, string)> subscriptions, List<string> errors)
    {
        string what = $"Handler {handler.HandlerType.Name} on queue '{handler.Queue}'";
        MessageHandlerOptions settings = handler.Options;
        if (settings.Subscription is not { } subscription)
        {
            errors.Add($"{what}: Subscription is null; leave the default or set a SubscriptionOptions.");
            return;
        }

        AddAll(errors, what, subscription.GetErrors());
        if (subscription.AutoAck)
        {
            errors.Add($"{what}: Subscription.AutoAck is true, but a hosted handler acks when it returns and nacks when it throws; leave AutoAck false.");
        }

        if (settings.MaxConcurrency < 1)
        {
            errors.Add($"{what}: MaxConcurrency is {settings.MaxConcurrency}; it must be at least 1 (1 handles messages in order).");
        }
        else if (settings.MaxConcurrency > subscription.MaxInFlight && subscription.MaxInFlight >= 1)
        {
            errors.Add($"{what}: MaxConcurrency is {settings.MaxConcurrency} but Subscription.MaxInFlight is {subscription.MaxInFlight}, so at most {subscription.MaxInFlight} could run at once; raise MaxInFlight to at least {settings.MaxConcurrency}.");
        }

        if (Timeouts.Describe(settings.HandlerTimeout, nameof(settings.HandlerTimeout), allowZero: false) is { } timeoutError)
        {
            errors.Add($"{what}: {timeoutError}");
        }
        else if (settings.HandlerTimeout != Timeout.InfiniteTimeSpan && subscription.AckTimeout != Timeout.InfiniteTimeSpan && settings.HandlerTimeout > subscription.AckTimeout)
        {
            errors.Add($"{what}: HandlerTimeout ({settings.HandlerTimeout}) is longer than Subscription.AckTimeout ({subscription.AckTimeout}), so the message would be delivered again while the handler still runs; lower HandlerTimeout or raise AckTimeout.");
        }

        if (options.FindQueue(handler.Queue) is { PayloadType: { } declared } && declared != handler.PayloadType)
        {
            errors.Add($"{what}: the handler takes {handler.PayloadType.Name} but the queue is declared with payload type {declared.Name}.");
        }

        if (!subscriptions.Add((handler.Queue, handler.SubscriptionName)))
        {
            errors.Add($"{what}: another handler already uses subscription '{handler.SubscriptionName}' on this queue; give each handler its own subscription name.");
        }
    }

    /// <summary>
    /// A handler's queue must exist when the handler subscribes: declared in code, or declared on first use. Two
    /// handlers of a queue declared on first use must agree on its payload type, or the second would fail at start
    /// after the first had started.
    /// </summary>
    private static void ValidateHandlerQueue(HandlerRegistration handler, MessageBrokerOptions options, Dictionary<string, HandlerRegistration> undeclared, List<string> errors)
    {
        if (options.QueuesBelongToTransport)
        {
            // On RabbitMQ a queue is an exchange, declared when first used, and each subscription reads its own type.
            return;
        }

        // A handler of a dead-letter queue depends on its source queue, which has the same payload type.
        string source = handler.Queue.EndsWith(Names.DeadLetterSuffix, StringComparison.Ordinal) ? handler.Queue[..^Names.DeadLetterSuffix.Length] : handler.Queue;
        if (options.FindQueue(source) is { PayloadType: not null })
        {
            return;
        }

        string what = $"Handler {handler.HandlerType.Name} on queue '{handler.Queue}'";
        if (!options.Broker.AutoDeclareQueues)
        {
            errors.Add($"{what}: queue '{source}' is not declared and BrokerOptions.AutoDeclareQueues is false, so the handler could not subscribe; declare it with DeclareQueue<{handler.PayloadType.Name}>(\"{source}\") in AddMessageBroker.");
            return;
        }

        if (!undeclared.TryAdd(source, handler) && undeclared[source] is { } first && first.PayloadType != handler.PayloadType)
        {
            errors.Add($"{what}: the handler takes {handler.PayloadType.Name} but handler {first.HandlerType.Name} takes {first.PayloadType.Name} from the same queue '{source}', which is declared on first use with one payload type; declare it with DeclareQueue<T>(\"{source}\") and give both handlers that type.");
        }
    }

    private static void AddAll(List<string> errors, string what, List<string>? found)
    {
        if (found is null)
        {
            return;
        }

        foreach (string error in found)
        {
            errors.Add($"{what}: {error}");
        }
    }

    /// <summary>Stands in for a store that UseStore creates later, only so that BrokerOptions' checks see one.</summary>
    private sealed class PlaceholderStore : IMessageStore
    {
        public static readonly PlaceholderStore Instance = new();

        public IReadOnlyList<StoredQueueState> Load() => [];

        public void Write(StoreBatch batch) => throw new NotSupportedException();

        public void Dispose()
        {
        }
    }
}
