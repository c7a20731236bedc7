namespace MessageQueue.Persistence;

/// <summary>A durable subscription as a store keeps it.</summary>
/// <param name="Queue">The queue.</param>
/// <param name="Name">The subscription's name.</param>
/// <param name="Filters">Its topic filters.</param>
/// <param name="StartAfter">It holds the matching messages whose sequence is greater than this.</param>
public sealed record StoredSubscription(string Queue, string Name, IReadOnlyList<string> Filters, long StartAfter);
