namespace MessageQueue;

/// <summary>What a completed publish returns: where the message landed.</summary>
/// <param name="Queue">The queue the message was published to.</param>
/// <param name="MessageId">The message id (<see cref="Message{T}.Id"/>).</param>
/// <param name="Sequence">The message's position in the queue (<see cref="Message{T}.Sequence"/>), or 0 for a
/// message held by <see cref="PublishOptions.DeliverAfter"/> or <see cref="PublishOptions.NotBefore"/>, which gets
/// its sequence when it enters the queue.</param>
public readonly record struct PublishReceipt(string Queue, Guid MessageId, long Sequence);
