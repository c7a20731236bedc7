namespace MessageQueue;

/// <summary>
/// Thrown when the store cannot keep what the broker gives it: it could not be opened, is in use by another
/// broker, is not a store, or failed to write (a full disk, a read-only file). A publish that throws it was
/// not stored and must be treated as not published.
/// </summary>
public sealed class MessageStoreException : IOException
{
    /// <summary>Initializes a new instance with a default message.</summary>
    public MessageStoreException()
        : this("The message store failed.")
    {
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    public MessageStoreException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance.</summary>
    /// <param name="message">The message that describes the error.</param>
    /// <param name="innerException">The exception that caused this one.</param>
    public MessageStoreException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
