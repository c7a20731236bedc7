namespace MessageQueue;

/// <summary>
/// Decides whether a client may publish or subscribe, from <see cref="BrokerOptions.AuthorizationRules"/> and the
/// optional <see cref="IBrokerAuthorizer"/>. Decisions are cached per client (rules always; the authorizer's when it says
/// so), so a client's steady stream of publishes to one queue and event costs one dictionary lookup each.
/// </summary>
internal sealed class Authorizer
{
    /// <summary>How many decisions one client keeps; past that, decisions are made afresh each time.</summary>
    public const int MaxCachedPerClient = 1024;

    private readonly AuthorizationRule[] _rules;
    private readonly IBrokerAuthorizer? _custom;
    private readonly BrokerEvents _events;

    public Authorizer(IList<AuthorizationRule> rules, IBrokerAuthorizer? custom, BrokerEvents events)
    {
        _rules = [.. rules];
        _custom = custom;
        _events = events;
    }

    /// <summary>Whether anything is checked at all: with no rules and no authorizer, everything is allowed.</summary>
    public bool IsActive => _rules.Length > 0 || _custom is not null;

    /// <summary>Checks a publish (against its event name) or one filter of a subscription; a denial faults the result with <see cref="BrokerAuthorizationException"/>.</summary>
    public ValueTask CheckAsync(BrokerClient client, BrokerOperation operation, string queue, string eventOrFilter, CancellationToken cancellationToken)
    {
        if (client.TryGetDecision(operation, queue, eventOrFilter, out string? denied))
        {
            return denied is null ? ValueTask.CompletedTask : ValueTask.FromException(Denied(client, operation, queue, eventOrFilter, denied));
        }

        (bool? byRules, string reason) = Decide(client.Name, operation, queue, eventOrFilter);
        if (byRules is { } decided)
        {
            client.RememberDecision(operation, queue, eventOrFilter, decided ? null : reason);
            return decided ? ValueTask.CompletedTask : ValueTask.FromException(Denied(client, operation, queue, eventOrFilter, reason));
        }

        if (_custom is null)
        {
            client.RememberDecision(operation, queue, eventOrFilter, reason);
            return ValueTask.FromException(Denied(client, operation, queue, eventOrFilter, reason));
        }

        return AskAsync(client, operation, queue, eventOrFilter, cancellationToken);
    }

    private async ValueTask AskAsync(BrokerClient client, BrokerOperation operation, string queue, string eventOrFilter, CancellationToken cancellationToken)
    {
        AuthorizationDecision decision;
        try
        {
            decision = await _custom!.AuthorizeAsync(new AuthorizationRequest(client.Name, operation, queue, eventOrFilter), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception error)
        {
            // A failing authorizer denies: never allow what could not be decided.
            throw Denied(client, operation, queue, eventOrFilter, $"the custom authorizer failed ({error.GetType().Name}: {error.Message})", error);
        }

        string? reason = decision.IsAllowed ? null : decision.Reason ?? "the custom authorizer denied it";
        if (decision.IsCacheable)
        {
            client.RememberDecision(operation, queue, eventOrFilter, reason);
        }

        if (reason is not null)
        {
            throw Denied(client, operation, queue, eventOrFilter, reason);
        }
    }

    /// <summary>The rules' decision: true, false, or null when no rule speaks to the call.</summary>
    private (bool? Allowed, string Reason) Decide(string client, BrokerOperation operation, string queue, string eventOrFilter)
    {
        // A dead-letter queue holds its source queue's messages: it is judged by the source queue's rules.
        if (queue.EndsWith(Names.DeadLetterSuffix, StringComparison.Ordinal))
        {
            queue = queue[..^Names.DeadLetterSuffix.Length];
        }

        // {client} stands for the name as one literal word. A name that is not one plain word (it has '.', '*', '#' or
        // another character patterns give a meaning to) could widen a pattern: for it, allow rules with {client} do not
        // apply, and deny rules with {client} apply as if it were '#', which denies more, never less.
        bool plain = IsPlainWord(client);
        AuthorizationRule? allowedBy = null;
        foreach (AuthorizationRule rule in _rules)
        {
            if (rule.Operation != operation || (rule.Client != "*" && !string.Equals(rule.Client, client, StringComparison.Ordinal)))
            {
                continue;
            }

            bool hasPlaceholder = rule.Queue.Contains(AuthorizationRule.ClientPlaceholder, StringComparison.Ordinal) || rule.Event.Contains(AuthorizationRule.ClientPlaceholder, StringComparison.Ordinal);
            if (hasPlaceholder && !plain && !rule.IsDeny)
            {
                continue;
            }

            string word = plain ? client : "#";
            string queuePattern = rule.Queue.Replace(AuthorizationRule.ClientPlaceholder, word, StringComparison.Ordinal);
            if (!TopicPatterns.Covers(queuePattern, queue))
            {
                continue;
            }

            string eventPattern = rule.Event.Replace(AuthorizationRule.ClientPlaceholder, word, StringComparison.Ordinal);
            if (rule.IsDeny)
            {
                // A publish's event is one event; a subscription's filter is denied if it could receive any event the rule denies.
                bool touches = operation == BrokerOperation.Publish ? TopicPatterns.Covers(eventPattern, eventOrFilter) : TopicPatterns.Overlap(eventPattern, eventOrFilter);
                if (touches)
                {
                    return (false, $"rule {rule} denies it");
                }
            }
            else if (allowedBy is null && TopicPatterns.Covers(eventPattern, eventOrFilter))
            {
                allowedBy = rule;
            }
        }

        if (allowedBy is not null)
        {
            return (true, string.Empty);
        }

        return (_rules.Length == 0 ? null : _custom is null ? false : null, "no rule allows it");
    }

    private static bool IsPlainWord(string name)
    {
        foreach (char c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not '-' and not '_')
            {
                return false;
            }
        }

        return name.Length > 0;
    }

    private BrokerAuthorizationException Denied(BrokerClient client, BrokerOperation operation, string queue, string eventOrFilter, string reason, Exception? inner = null)
    {
        string verb = operation == BrokerOperation.Publish ? "publish" : "subscribe";
        string what = operation == BrokerOperation.Publish ? $"event '{eventOrFilter}'" : $"filter '{eventOrFilter}'";
        _events.Denied(client.Name, verb, queue, eventOrFilter, reason);
        return new BrokerAuthorizationException(
            client.Name,
            operation,
            queue,
            eventOrFilter,
            $"Client '{client.Name}' may not {verb} on queue '{queue}' with {what}: {reason}. Nothing was {(operation == BrokerOperation.Publish ? "published" : "subscribed")}; add an AuthorizationRule that allows it, or use another queue or event.",
            inner);
    }
}
