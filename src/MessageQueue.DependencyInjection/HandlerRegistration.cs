using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MessageQueue.DependencyInjection;

/// <summary>One AddMessageHandler call: which handler reads which queue, through which subscription, with which options.</summary>
internal abstract class HandlerRegistration(string queue, IReadOnlyList<string> filters, MessageHandlerOptions options, Type handlerType, Type payloadType)
{
    public string Queue { get; } = queue;

    public IReadOnlyList<string> Filters { get; } = filters;

    public MessageHandlerOptions Options { get; } = options;

    public Type HandlerType { get; } = handlerType;

    public Type PayloadType { get; } = payloadType;

    public string SubscriptionName => Options.Subscription?.Name ?? DefaultSubscriptionName(HandlerType);

    public override string ToString() => $"handler {HandlerType.Name} on queue '{Queue}' (subscription '{SubscriptionName}')";

    public abstract HandlerRunner CreateRunner(IServiceScopeFactory scopes, TimeProvider time, ILogger logger, BrokerMetrics? transportMetrics);

    /// <summary>The handler type's full name, made a valid subscription name ('+' of nested types and generic arity marks become '.' and '-').</summary>
    public static string DefaultSubscriptionName(Type handlerType)
    {
        string name = handlerType.FullName ?? handlerType.Name;
        var characters = new char[Math.Min(name.Length, Names.MaxNameLength)];
        for (int i = 0; i < characters.Length; i++)
        {
            char c = name[i];
            characters[i] = Names.IsNameCharacter(c) ? c : c == '+' ? '.' : '-';
        }

        return new string(characters);
    }
}

/// <summary>An AddMessageHandler call for <typeparamref name="THandler"/> reading payloads of type <typeparamref name="T"/>.</summary>
internal sealed class HandlerRegistration<THandler, T>(string queue, IReadOnlyList<string> filters, MessageHandlerOptions options)
    : HandlerRegistration(queue, filters, options, typeof(THandler), typeof(T))
    where THandler : class, IMessageHandler<T>
{
    public override HandlerRunner CreateRunner(IServiceScopeFactory scopes, TimeProvider time, ILogger logger, BrokerMetrics? transportMetrics) =>
        new HandlerRunner<THandler, T>(this, scopes, time, logger, transportMetrics);
}
