namespace MessageQueue.Cli.Demo;

/// <summary>What the demo's publisher sent, as the broker's receipt confirmed it.</summary>
/// <param name="Batch">The batch it belonged to: 1 before the auditor disconnected, 2 while it was away.</param>
/// <param name="MessageId">The message id from the <see cref="PublishReceipt"/>.</param>
/// <param name="Sequence">The message's sequence in the queue.</param>
/// <param name="Event">The event name it was published with.</param>
/// <param name="Change">The payload.</param>
internal sealed record PublishedMessage(int Batch, Guid MessageId, long Sequence, string Event, DbChange Change);
