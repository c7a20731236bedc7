namespace MessageQueue.RabbitMQ;

/// <summary>A change in a <see cref="RabbitMqTransport"/>'s connection to RabbitMQ.</summary>
public sealed class RabbitMqConnectionEventArgs : EventArgs
{
    /// <summary>Creates the arguments.</summary>
    /// <param name="error">Why the connection was lost; null when it came back.</param>
    /// <param name="attempts">How many connection attempts reconnecting took; 0 when it was lost.</param>
    public RabbitMqConnectionEventArgs(Exception? error, int attempts)
    {
        Error = error;
        Attempts = attempts;
    }

    /// <summary>Why the connection was lost (<see cref="RabbitMqTransport.ConnectionLost"/>); null for <see cref="RabbitMqTransport.Reconnected"/>.</summary>
    public Exception? Error { get; }

    /// <summary>How many connection attempts reconnecting took (<see cref="RabbitMqTransport.Reconnected"/>); 0 when the connection was lost.</summary>
    public int Attempts { get; }
}
