namespace MessageQueue;

/// <summary>A call to authorize, as an <see cref="IBrokerAuthorizer"/> sees it.</summary>
/// <param name="Client">The client's name.</param>
/// <param name="Operation">Publish or subscribe.</param>
/// <param name="Queue">The queue.</param>
/// <param name="Event">The event name of a publish, or one filter of a subscription.</param>
public readonly record struct AuthorizationRequest(string Client, BrokerOperation Operation, string Queue, string Event);
