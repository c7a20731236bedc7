namespace MessageQueue;

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
