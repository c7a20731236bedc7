namespace MessageQueue;

/// <summary>Values of the <see cref="MessageHeaders.DeadLetterReason"/> header.</summary>
public static class DeadLetterReasons
{
    /// <summary>A consumer rejected the delivery with <see cref="Delivery{T}.RejectAsync"/>.</summary>
    public const string Rejected = "rejected";
}
