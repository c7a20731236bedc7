namespace MessageQueue;

/// <summary>
/// Thrown by a publish when its queue is full: at once under <see cref="OverflowPolicy.Reject"/>, or after
/// <see cref="QueueOptions.PublishTimeout"/> under <see cref="OverflowPolicy.Wait"/>. Nothing was enqueued.
/// </summary>
public sealed class QueueFullException : InvalidOperationException
{
    /// <summary>Initializes a new instance with a default message.</summary>
    public QueueFullException()
        : this("The queue is full.")
    {
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    public QueueFullException(string message)
        : base(message)
    {
        Queue = string.Empty;
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    /// <param name="innerException">The exception that caused this one.</param>
    public QueueFullException(string message, Exception innerException)
        : base(message, innerException)
    {
        Queue = string.Empty;
    }

    /// <summary>Initializes a new instance for a named queue.</summary>
    /// <param name="queue">The queue that was full.</param>
    /// <param name="message">The message that describes the error.</param>
    /// <param name="innerException">The exception that caused this one, if any.</param>
    public QueueFullException(string queue, string message, Exception? innerException)
        : base(message, innerException)
    {
        Queue = queue;
    }

    /// <summary>Gets the name of the queue that was full.</summary>
    public string Queue { get; }
}
