namespace MessageQueue;

/// <summary>What an <see cref="IBrokerAuthorizer"/> decided.</summary>
public readonly record struct AuthorizationDecision
{
    /// <summary>Gets whether the call is allowed.</summary>
    public bool IsAllowed { get; init; }

    /// <summary>Gets why it was denied, for the exception and the log; <see langword="null"/> when allowed.</summary>
    public string? Reason { get; init; }

    /// <summary>
    /// Gets whether the broker may remember the decision for the same client, operation, queue and event or filter.
    /// Remembered decisions keep the authorizer off the publish path; return <see langword="false"/> for a decision that
    /// can change while the client is connected.
    /// </summary>
    public bool IsCacheable { get; init; }

    /// <summary>Allows the call.</summary>
    /// <param name="cacheable">Whether the broker may remember the decision.</param>
    /// <returns>The decision.</returns>
    public static AuthorizationDecision Allow(bool cacheable = true) => new() { IsAllowed = true, IsCacheable = cacheable };

    /// <summary>Denies the call.</summary>
    /// <param name="reason">Why, for the exception and the log.</param>
    /// <param name="cacheable">Whether the broker may remember the decision.</param>
    /// <returns>The decision.</returns>
    public static AuthorizationDecision Deny(string reason, bool cacheable = true) => new() { IsAllowed = false, Reason = reason, IsCacheable = cacheable };
}

/// <summary>A call to authorize, as an <see cref="IBrokerAuthorizer"/> sees it.</summary>
/// <param name="Client">The client's name.</param>
/// <param name="Operation">Publish or subscribe.</param>
/// <param name="Queue">The queue.</param>
/// <param name="Event">The event name of a publish, or one filter of a subscription.</param>
public readonly record struct AuthorizationRequest(string Client, BrokerOperation Operation, string Queue, string Event);

/// <summary>
/// Custom authorization decisions, for what the <see cref="BrokerOptions.AuthorizationRules"/> do not decide: a call no
/// rule allows or denies is the authorizer's to decide (without one, it is denied once rules exist).
/// </summary>
public interface IBrokerAuthorizer
{
    /// <summary>Decides one call. It runs on the publishing or subscribing thread; keep it quick, or let the broker cache it.</summary>
    /// <param name="request">The call.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <returns>The decision.</returns>
    ValueTask<AuthorizationDecision> AuthorizeAsync(AuthorizationRequest request, CancellationToken cancellationToken);
}
