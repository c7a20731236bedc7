namespace MessageQueue;

/// <summary>
/// Thrown when a call names a queue that was never declared and the broker does not declare queues on
/// first use (<see cref="BrokerOptions.AutoDeclareQueues"/> is <see langword="false"/>).
/// </summary>
public sealed class QueueNotFoundException : InvalidOperationException
{
    /// <summary>Initializes a new instance with a default message.</summary>
    public QueueNotFoundException()
        : this("The queue was not found.")
    {
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    public QueueNotFoundException(string message)
        : base(message)
    {
        Queue = string.Empty;
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    /// <param name="innerException">The exception that caused this one.</param>
    public QueueNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
        Queue = string.Empty;
    }

    /// <summary>Initializes a new instance for a named queue.</summary>
    /// <param name="queue">The queue that was not found.</param>
    /// <param name="message">The message that describes the error.</param>
    /// <param name="innerException">The exception that caused this one, if any.</param>
    public QueueNotFoundException(string queue, string message, Exception? innerException)
        : base(message, innerException)
    {
        Queue = queue;
    }

    /// <summary>Gets the name of the queue that was not found.</summary>
    public string Queue { get; }
}
