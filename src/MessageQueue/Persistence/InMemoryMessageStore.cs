namespace MessageQueue.Persistence;

/// <summary>
/// An <see cref="IMessageStore"/> that keeps everything in memory. It survives a broker being disposed and a
/// new one created on the same instance (a restart within one process), not the process ending. Tests use it
/// to restart a broker without a file; it is also the reference for what a store must do.
/// </summary>
public sealed class InMemoryMessageStore : IPagedMessageStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, QueueState> _queues = new(StringComparer.Ordinal);

    private sealed class QueueState
    {
        public long LastSequence;
        public readonly SortedDictionary<long, StoredMessage> Messages = [];
        public readonly Dictionary<Guid, StoredMessage> Scheduled = [];
        public readonly List<Guid> ScheduledOrder = [];
        public readonly Dictionary<string, SubscriptionState> Subscriptions = new(StringComparer.Ordinal);
        public readonly Dictionary<Guid, StoredId> Ids = [];
    }

    private sealed class SubscriptionState(StoredSubscription subscription)
    {
        public StoredSubscription Subscription = subscription;
        public long Cursor;
        public readonly HashSet<long> Acked = [];
        public readonly Dictionary<long, int> Deliveries = [];
    }

    /// <inheritdoc/>
    public IReadOnlyList<StoredQueueState> Load() => LoadCore(withMessages: true);

    /// <inheritdoc/>
    public IReadOnlyList<StoredQueueState> LoadQueues() => LoadCore(withMessages: false);

    private List<StoredQueueState> LoadCore(bool withMessages)
    {
        lock (_gate)
        {
            var queues = new List<StoredQueueState>(_queues.Count);
            foreach ((string name, QueueState queue) in _queues)
            {
                queues.Add(new StoredQueueState
                {
                    Name = name,
                    LastSequence = queue.LastSequence,
                    Messages = withMessages ? [.. queue.Messages.Values] : [],
                    MessageCount = withMessages ? 0 : queue.Messages.Count,
                    Scheduled = [.. queue.ScheduledOrder.Select(id => queue.Scheduled[id])],
                    Subscriptions = Subscriptions(queue, withMessages ? static _ => true : static _ => false),
                    DeduplicationIds = [.. queue.Ids.Values],
                });
            }

            return queues;
        }
    }

    /// <inheritdoc/>
    public StoredQueueState ReadMessages(string queue, long afterSequence, int maxMessages)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentOutOfRangeException.ThrowIfNegative(afterSequence);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        lock (_gate)
        {
            if (!_queues.TryGetValue(queue, out QueueState? state))
            {
                return new StoredQueueState { Name = queue, LastSequence = 0 };
            }

            List<StoredMessage> page = [.. state.Messages.Values.SkipWhile(m => m.Sequence <= afterSequence).Take(maxMessages)];
            var sequences = new HashSet<long>(page.Select(m => m.Sequence));
            return new StoredQueueState
            {
                Name = queue,
                LastSequence = state.LastSequence,
                Messages = page,
                Subscriptions = Subscriptions(state, sequences.Contains),
            };
        }
    }

    /// <summary>The queue's subscriptions, with the acks and delivery counts of the messages <paramref name="include"/> picks.</summary>
    private static List<StoredSubscriptionState> Subscriptions(QueueState queue, Func<long, bool> include)
    {
        var subscriptions = new List<StoredSubscriptionState>(queue.Subscriptions.Count);
        foreach (SubscriptionState subscription in queue.Subscriptions.Values)
        {
            subscriptions.Add(new StoredSubscriptionState
            {
                Subscription = subscription.Subscription,
                Cursor = subscription.Cursor,
                Acked = new HashSet<long>(subscription.Acked.Where(include)),
                Deliveries = subscription.Deliveries.Where(d => include(d.Key)).ToDictionary(),
            });
        }

        return subscriptions;
    }

    /// <inheritdoc/>
    public void Write(StoreBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        lock (_gate)
        {
            // All or nothing: check every operation before applying any.
            foreach (StoreOperation operation in batch.Operations)
            {
                Check(operation);
            }

            foreach (StoreOperation operation in batch.Operations)
            {
                Apply(operation);
            }
        }
    }

    private static void Check(StoreOperation operation)
    {
        if (string.IsNullOrEmpty(operation.Queue) || !Enum.IsDefined(operation.Kind))
        {
            throw new MessageStoreException($"A store operation has no queue or an unknown kind ({operation.Kind}): it is default(StoreOperation), not one made by its static methods. Nothing of the batch was stored.");
        }
    }

    private void Apply(StoreOperation operation)
    {
        if (!_queues.TryGetValue(operation.Queue, out QueueState? queue))
        {
            queue = new QueueState();
            _queues.Add(operation.Queue, queue);
        }

        switch (operation.Kind)
        {
            case StoreOperationKind.Append:
                StoredMessage message = operation.Message!;
                queue.Messages[message.Sequence] = message;
                queue.LastSequence = Math.Max(queue.LastSequence, message.Sequence);
                if (message.DeduplicateUntil is { } until)
                {
                    queue.Ids[message.Id] = new StoredId { MessageId = message.Id, Sequence = message.Sequence, Until = until };
                }

                if (message.DueAt is not null && queue.Scheduled.Remove(message.Id))
                {
                    queue.ScheduledOrder.Remove(message.Id);
                }

                break;
            case StoreOperationKind.Ack when queue.Messages.ContainsKey(operation.Sequence):
                Subscription(queue, operation)?.Acked.Add(operation.Sequence);
                break;
            case StoreOperationKind.Remove:
                queue.Messages.Remove(operation.Sequence);
                foreach (SubscriptionState subscription in queue.Subscriptions.Values)
                {
                    subscription.Acked.Remove(operation.Sequence);
                    subscription.Deliveries.Remove(operation.Sequence);
                }

                break;
            case StoreOperationKind.SetDeliveries when queue.Messages.ContainsKey(operation.Sequence):
                if (Subscription(queue, operation) is { } returned)
                {
                    returned.Deliveries[operation.Sequence] = operation.Deliveries;
                }

                break;
            case StoreOperationKind.SetCursor:
                if (Subscription(queue, operation) is { } delivered)
                {
                    delivered.Cursor = Math.Max(delivered.Cursor, operation.Sequence);
                }

                break;
            case StoreOperationKind.SaveSubscription:
                StoredSubscription saved = operation.DurableSubscription!;
                if (queue.Subscriptions.TryGetValue(saved.Name, out SubscriptionState? existing))
                {
                    existing.Subscription = saved;
                }
                else
                {
                    queue.Subscriptions.Add(saved.Name, new SubscriptionState(saved));
                }

                break;
            case StoreOperationKind.DeleteSubscription:
                queue.Subscriptions.Remove(operation.Subscription!);
                break;
            case StoreOperationKind.Schedule:
                StoredMessage held = operation.Message!;
                if (queue.Scheduled.TryAdd(held.Id, held))
                {
                    queue.ScheduledOrder.Add(held.Id);
                }

                break;
            case StoreOperationKind.Unschedule:
                if (queue.Scheduled.Remove(operation.MessageId))
                {
                    queue.ScheduledOrder.Remove(operation.MessageId);
                }

                break;
            case StoreOperationKind.SequenceTaken:
                queue.LastSequence = Math.Max(queue.LastSequence, operation.Sequence);
                break;
            case StoreOperationKind.ForgetIds:
                foreach (StoredId id in queue.Ids.Values.Where(id => id.Until <= operation.Time).ToList())
                {
                    queue.Ids.Remove(id.MessageId);
                }

                break;
        }
    }

    private static SubscriptionState? Subscription(QueueState queue, StoreOperation operation) =>
        operation.Subscription is { } name && queue.Subscriptions.TryGetValue(name, out SubscriptionState? subscription) ? subscription : null;

    /// <summary>Does nothing: the contents stay for the next broker that uses this instance.</summary>
    public void Dispose()
    {
    }
}
