namespace MessageQueue;

public sealed partial class Broker
{
    /// <summary>
    /// Returns what the broker holds right now: every queue with its depth and counts, every
    /// subscription with its backlog, in-flight deliveries and counts, and every connected client
    /// with what it subscribed to.
    /// </summary>
    /// <remarks>
    /// Each queue and subscription is read under its own lock, so each figure is consistent in
    /// itself; the snapshot as a whole is not one atomic cut across queues while traffic flows.
    /// </remarks>
    /// <returns>The snapshot.</returns>
    public BrokerSnapshot GetSnapshot()
    {
        Dictionary<string, BrokerQueue> declared = Queues;
        var queues = new List<QueueSnapshot>(declared.Count);
        foreach (BrokerQueue queue in declared.Values)
        {
            queues.Add(queue.GetSnapshot());
        }

        queues.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));

        BrokerClient[] clients;
        lock (_gate)
        {
            clients = [.. _clients];
        }

        var clientSnapshots = new List<ClientSnapshot>(clients.Length);
        foreach (BrokerClient client in clients)
        {
            clientSnapshots.Add(client.GetSnapshot());
        }

        return new BrokerSnapshot
        {
            Timestamp = _options.TimeProvider.GetUtcNow(),
            Queues = queues,
            Clients = clientSnapshots,
            EventHandlerFailures = Interlocked.Read(ref _eventHandlerFailures),
            LastEventHandlerFailure = Volatile.Read(ref _lastEventHandlerFailure),
        };
    }
}
