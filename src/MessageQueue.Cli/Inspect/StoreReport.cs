using System.Globalization;
using MessageQueue.Cli.Demo;
using MessageQueue.Persistence;

namespace MessageQueue.Cli.Inspect;

/// <summary>What <c>mq inspect</c> shows of a store: queues, durable subscriptions with their backlog, and dead letters.</summary>
internal sealed record StoreReport
{
    public required IReadOnlyList<QueueRow> Queues { get; init; }

    public required IReadOnlyList<SubscriptionRow> Subscriptions { get; init; }

    public required IReadOnlyList<DeadLetterRow> DeadLetters { get; init; }

    internal sealed record QueueRow(string Name, long LastSequence, int Messages, int Held, int DeduplicationIds);

    /// <param name="Queue">The queue.</param>
    /// <param name="Name">The durable subscription.</param>
    /// <param name="Filters">Its filters, comma-separated.</param>
    /// <param name="Backlog">Messages waiting for it that it was never delivered.</param>
    /// <param name="InFlight">Messages it was delivered and had not settled when the broker stopped; they come again.</param>
    internal sealed record SubscriptionRow(string Queue, string Name, string Filters, int Backlog, int InFlight);

    internal sealed record DeadLetterRow(string Queue, long Sequence, string Event, string Reason, string Subscription, string Attempts, string At, string Detail);

    /// <summary>Works out the report from what the store read back, the way a broker would rebuild it.</summary>
    public static StoreReport From(IReadOnlyList<StoredQueueState> stored)
    {
        var queues = new List<QueueRow>();
        var subscriptions = new List<SubscriptionRow>();
        var deadLetters = new List<DeadLetterRow>();
        foreach (StoredQueueState queue in stored.OrderBy(q => q.Name, StringComparer.Ordinal))
        {
            queues.Add(new QueueRow(queue.Name, queue.LastSequence, queue.Messages.Count, queue.Scheduled.Count, queue.DeduplicationIds.Count));
            foreach (StoredSubscriptionState subscription in queue.Subscriptions.OrderBy(s => s.Subscription.Name, StringComparer.Ordinal))
            {
                int backlog = 0, inFlight = 0;
                foreach (StoredMessage message in queue.Messages)
                {
                    if (message.Sequence <= subscription.Subscription.StartAfter
                        || subscription.Acked.Contains(message.Sequence)
                        || !TopicMatcher.MatchesAny(subscription.Subscription.Filters, message.Event))
                    {
                        continue;
                    }

                    bool delivered = subscription.Deliveries.ContainsKey(message.Sequence) || message.Sequence <= subscription.Cursor;
                    inFlight += delivered ? 1 : 0;
                    backlog += delivered ? 0 : 1;
                }

                subscriptions.Add(new SubscriptionRow(queue.Name, subscription.Subscription.Name, string.Join(", ", subscription.Subscription.Filters), backlog, inFlight));
            }

            if (queue.Name.EndsWith(".$dlq", StringComparison.Ordinal))
            {
                foreach (StoredMessage message in queue.Messages)
                {
                    string Header(string name) => message.Headers.TryGetValue(name, out string? value) ? value : string.Empty;
                    deadLetters.Add(new DeadLetterRow(
                        queue.Name,
                        message.Sequence,
                        message.Event,
                        Header(MessageHeaders.DeadLetterReason),
                        Header(MessageHeaders.SourceSubscription),
                        Header(MessageHeaders.Attempts),
                        message.Timestamp.ToString("u", CultureInfo.InvariantCulture),
                        Header(MessageHeaders.DeadLetterDetail)));
                }
            }
        }

        return new StoreReport { Queues = queues, Subscriptions = subscriptions, DeadLetters = deadLetters };
    }
}
