namespace MessageQueue;

/// <summary>A message on its way into a queue: everything but its sequence and timestamp, which it gets when it enters.</summary>
/// <param name="Event">The event name.</param>
/// <param name="Payload">The payload.</param>
/// <param name="Headers">Frozen headers.</param>
/// <param name="Id">A given message id (a replayed dead letter keeps its own), or empty to derive one from the sequence.</param>
/// <param name="ExpiresAt">UTC ticks at which the message expires; 0 for never.</param>
/// <param name="DueAt">UTC ticks before which the message is held out of the queue; 0 to enter it now.</param>
/// <param name="Target">For a replayed dead letter: the one subscription it goes back to, instead of every match.</param>
internal readonly record struct Draft<T>(string Event, T Payload, IReadOnlyDictionary<string, string> Headers, Guid Id, long ExpiresAt = 0, long DueAt = 0, SubscriptionState<T>? Target = null);
