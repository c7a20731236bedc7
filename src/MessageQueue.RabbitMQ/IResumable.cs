namespace MessageQueue.RabbitMQ;

/// <summary>What the transport asks of its subscriptions when the connection is lost and comes back.</summary>
internal interface IResumable
{
    bool IsDurable { get; }

    void OnConnectionLost(string reason);

    Task<bool> ResumeAsync(global::RabbitMQ.Client.IConnection connection, int generation);
}
