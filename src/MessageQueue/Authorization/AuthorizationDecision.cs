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
