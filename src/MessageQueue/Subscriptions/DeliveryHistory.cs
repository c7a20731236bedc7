namespace MessageQueue;

/// <summary>
/// What happened to a message in one subscription before now: when it was first and last delivered,
/// and the last handler exception. Created on the first failure (nack, timeout, handler exception), so
/// a message that is acked at once never allocates one. Written into a dead letter's headers.
/// </summary>
internal sealed class DeliveryHistory
{
    /// <summary>When the first delivery was read (or failed, without an ack deadline), as a <see cref="TimeProvider"/> timestamp.</summary>
    public long FirstDeliveredAt { get; init; }

    /// <summary>When the latest delivery was read (or failed, without an ack deadline), as a <see cref="TimeProvider"/> timestamp.</summary>
    public long LastDeliveredAt { get; set; }

    public string? LastErrorType { get; set; }

    public string? LastErrorMessage { get; set; }

    /// <summary>Records a failed delivery that was read (or failed) at <paramref name="readAt"/>.</summary>
    public static DeliveryHistory Record(DeliveryHistory? history, long readAt, Exception? error)
    {
        history ??= new DeliveryHistory { FirstDeliveredAt = readAt };
        history.LastDeliveredAt = readAt;
        if (error is not null)
        {
            history.LastErrorType = error.GetType().FullName;
            history.LastErrorMessage = error.Message;
        }

        return history;
    }
}
