namespace MessageQueue;

/// <summary>Names of the headers the broker itself writes. Every name starts with <c>mq-</c>.</summary>
public static class MessageHeaders
{
    /// <summary>On a dead letter: why it was dead-lettered, one of <see cref="DeadLetterReasons"/>.</summary>
    public const string DeadLetterReason = "mq-dead-letter-reason";

    /// <summary>On a dead letter: the reason text given to <see cref="Delivery{T}.RejectAsync"/>, when one was given.</summary>
    public const string DeadLetterDetail = "mq-dead-letter-detail";

    /// <summary>On a replayed message: how many times it was moved back from the dead-letter queue (<see cref="Broker.ReplayDeadLettersAsync"/>).</summary>
    public const string ReplayCount = "mq-replay-count";

    /// <summary>On a dead letter: the queue the message was dead-lettered from.</summary>
    public const string SourceQueue = "mq-source-queue";

    /// <summary>On a dead letter: the message's sequence in its source queue.</summary>
    public const string SourceSequence = "mq-source-sequence";

    /// <summary>On a dead letter: the subscription that dead-lettered it, or empty for an ephemeral one.</summary>
    public const string SourceSubscription = "mq-source-subscription";

    /// <summary>On a dead letter: how many times the message had been delivered to that subscription.</summary>
    public const string Attempts = "mq-attempts";

    /// <summary>On a dead letter: when it was dead-lettered, in ISO 8601 (round-trip) format.</summary>
    public const string DeadLetteredAt = "mq-dead-lettered-at";

    /// <summary>
    /// On a dead letter that was delivered: when its first delivery was read, in ISO 8601 (round-trip)
    /// format. For a subscription without an <see cref="SubscriptionOptions.AckTimeout"/> the broker does not
    /// keep read times, and this is when that delivery failed (was nacked, rejected or taken back).
    /// </summary>
    public const string FirstDeliveredAt = "mq-first-delivered-at";

    /// <summary>On a dead letter that was delivered: when its last delivery was read (see <see cref="FirstDeliveredAt"/>), in ISO 8601 (round-trip) format.</summary>
    public const string LastDeliveredAt = "mq-last-delivered-at";

    /// <summary>On a dead letter whose handler threw: the full type name of the last exception.</summary>
    public const string LastExceptionType = "mq-last-exception-type";

    /// <summary>On a dead letter whose handler threw: the message of the last exception.</summary>
    public const string LastExceptionMessage = "mq-last-exception-message";
}
