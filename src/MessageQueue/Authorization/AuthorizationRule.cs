using System.Globalization;

namespace MessageQueue;

/// <summary>
/// One authorization rule: a client (or every client) is allowed, or denied, to publish or subscribe where a queue pattern
/// and an event pattern match. Patterns use the broker's wildcards (<c>*</c> one word, <c>#</c> any number of words), and
/// <c>{client}</c> stands for the calling client's name.
/// </summary>
/// <remarks>
/// <para>With no rules (and no <see cref="IBrokerAuthorizer"/>), everything is allowed. Once there are rules, a call is
/// allowed only if a rule allows it and no rule denies it: deny wins. A publish is checked against its event name; a
/// subscription against each of its filters, which an allow rule must cover entirely (every event the filter can match,
/// the rule's pattern matches) and no deny rule may touch (no event matches both).</para>
/// <para>The broker's own <see cref="Broker.PublishAsync{T}"/> and <see cref="Broker.SubscribeAsync{T}"/> are the
/// application's, and are not checked; rules apply to clients from <see cref="Broker.Connect"/>.</para>
/// </remarks>
/// <example>
/// The scheme where each endpoint publishes only its own results, and the service reads them all:
/// <code>
/// options.AuthorizationRules.Add(AuthorizationRule.AllowPublish("*", "results", "{client}.results"));
/// options.AuthorizationRules.Add(AuthorizationRule.AllowSubscribe("results-service", "results", "*.results"));
/// </code>
/// </example>
public sealed class AuthorizationRule
{
    /// <summary>The placeholder for the calling client's name in a rule's patterns.</summary>
    public const string ClientPlaceholder = "{client}";

    private AuthorizationRule(string client, BrokerOperation operation, string queue, string eventPattern, bool deny)
    {
        Client = client;
        Operation = operation;
        Queue = queue;
        Event = eventPattern;
        IsDeny = deny;
    }

    /// <summary>Gets the client the rule is for: a client name, or <c>*</c> for every client.</summary>
    public string Client { get; }

    /// <summary>Gets the operation the rule is about.</summary>
    public BrokerOperation Operation { get; }

    /// <summary>Gets the queue pattern.</summary>
    public string Queue { get; }

    /// <summary>Gets the event pattern.</summary>
    public string Event { get; }

    /// <summary>Gets whether the rule denies (rather than allows).</summary>
    public bool IsDeny { get; }

    /// <summary>Allows <paramref name="client"/> to publish to queues matching <paramref name="queue"/> with events matching <paramref name="eventPattern"/>.</summary>
    /// <param name="client">A client name, or <c>*</c> for every client.</param>
    /// <param name="queue">A queue pattern.</param>
    /// <param name="eventPattern">An event pattern; <c>{client}</c> stands for the client's name.</param>
    /// <returns>The rule.</returns>
    public static AuthorizationRule AllowPublish(string client, string queue, string eventPattern) => new(client, BrokerOperation.Publish, queue, eventPattern, deny: false);

    /// <summary>Denies <paramref name="client"/> publishing to queues matching <paramref name="queue"/> with events matching <paramref name="eventPattern"/>.</summary>
    /// <param name="client">A client name, or <c>*</c> for every client.</param>
    /// <param name="queue">A queue pattern.</param>
    /// <param name="eventPattern">An event pattern; <c>{client}</c> stands for the client's name.</param>
    /// <returns>The rule.</returns>
    public static AuthorizationRule DenyPublish(string client, string queue, string eventPattern) => new(client, BrokerOperation.Publish, queue, eventPattern, deny: true);

    /// <summary>Allows <paramref name="client"/> to subscribe to queues matching <paramref name="queue"/> with filters that <paramref name="eventPattern"/> covers.</summary>
    /// <param name="client">A client name, or <c>*</c> for every client.</param>
    /// <param name="queue">A queue pattern.</param>
    /// <param name="eventPattern">An event pattern; <c>{client}</c> stands for the client's name.</param>
    /// <returns>The rule.</returns>
    public static AuthorizationRule AllowSubscribe(string client, string queue, string eventPattern) => new(client, BrokerOperation.Subscribe, queue, eventPattern, deny: false);

    /// <summary>Denies <paramref name="client"/> subscriptions to queues matching <paramref name="queue"/> whose filters could match an event <paramref name="eventPattern"/> matches.</summary>
    /// <param name="client">A client name, or <c>*</c> for every client.</param>
    /// <param name="queue">A queue pattern.</param>
    /// <param name="eventPattern">An event pattern; <c>{client}</c> stands for the client's name.</param>
    /// <returns>The rule.</returns>
    public static AuthorizationRule DenySubscribe(string client, string queue, string eventPattern) => new(client, BrokerOperation.Subscribe, queue, eventPattern, deny: true);

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{(IsDeny ? "Deny" : "Allow")}{Operation}({Client}, {Queue}, {Event})");

    /// <summary>Every problem with the rule, or null.</summary>
    internal string? Describe()
    {
        if (string.IsNullOrEmpty(Client) || (Client != "*" && Names.DescribeInvalidName(Client, "The client") is not null))
        {
            return $"{this}: the client must be a client name or '*'.";
        }

        foreach ((string pattern, string what) in new[] { (Queue, "queue"), (Event, "event") })
        {
            string probe = pattern?.Replace(ClientPlaceholder, "client", StringComparison.Ordinal) ?? string.Empty;
            try
            {
                Names.ValidateFilter(probe, what);
            }
            catch (ArgumentException error)
            {
                return $"{this}: the {what} pattern is not valid: {error.Message}";
            }
        }

        return null;
    }
}
