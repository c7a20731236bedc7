namespace MessageQueue;

/// <summary>One queue in a <see cref="BrokerSnapshot"/>.</summary>
public sealed record QueueSnapshot
{
    /// <summary>Gets the queue name.</summary>
    public required string Name { get; init; }

    /// <summary>Gets the payload type the queue was declared with.</summary>
    public required Type PayloadType { get; init; }

    /// <summary>Gets whether this is a dead-letter queue.</summary>
    public bool IsDeadLetterQueue { get; init; }

    /// <summary>Gets the queue's bound.</summary>
    public int MaxMessages { get; init; }

    /// <summary>Gets how the queue keeps its messages.</summary>
    public RetentionPolicy Retention { get; init; }

    /// <summary>Gets the queue's overflow policy.</summary>
    public OverflowPolicy Overflow { get; init; }

    /// <summary>
    /// Gets how many messages the queue retains: published and not yet settled by every subscription
    /// they were routed to (waiting or in flight). For a dead-letter queue: the dead letters it keeps.
    /// </summary>
    public int Depth { get; init; }

    /// <summary>
    /// Gets the sequence of the last message published, or 0. On a durable queue it carries on from what the store
    /// kept, across restarts; see <see cref="Published"/> for this broker's own count.
    /// </summary>
    public long LastSequence { get; init; }

    /// <summary>
    /// Gets how many messages were published into the queue since this broker started (each one took a sequence). Equal
    /// to <see cref="LastSequence"/> unless a store gave back an earlier broker's messages.
    /// </summary>
    public long Published { get; init; }

    /// <summary>Gets how many published messages matched no subscription and were therefore not kept.</summary>
    public long Unrouted { get; init; }

    /// <summary>Gets how many messages the overflow policy dropped.</summary>
    public long Dropped { get; init; }

    /// <summary>Gets how many unsettled messages were let go because their subscription ended (an ephemeral consumer left, or a durable subscription was deleted).</summary>
    public long Abandoned { get; init; }

    /// <summary>Gets how many messages consumers rejected into the dead-letter queue.</summary>
    public long DeadLettered { get; init; }

    /// <summary>Gets, for a dead-letter queue, how many dead letters were moved back to their source queue.</summary>
    public long Replayed { get; init; }

    /// <summary>Gets how many messages are held for delayed delivery (<see cref="PublishOptions.DeliverAfter"/>); they count towards <see cref="Depth"/>.</summary>
    public int Scheduled { get; init; }

    /// <summary>
    /// Gets how many retained messages of a durable queue wait only in its store, past its memory window
    /// (<see cref="QueueOptions.MaxMessagesInMemory"/>); they count towards <see cref="Depth"/> and are read back, in
    /// sequence order, as consumers release the messages in memory. Always 0 for an in-memory queue.
    /// </summary>
    public long PagedOut { get; init; }

    /// <summary>Gets how many publishes were duplicates within the deduplication window, and enqueued nothing.</summary>
    public long Deduplicated { get; init; }

    /// <summary>Gets how many publishers are waiting for room.</summary>
    public int WaitingPublishers { get; init; }

    /// <summary>Gets the queue's subscriptions, in the order they were created.</summary>
    public required IReadOnlyList<SubscriptionSnapshot> Subscriptions { get; init; }

    /// <summary>Returns the durable subscription called <paramref name="name"/>.</summary>
    /// <param name="name">The subscription name.</param>
    /// <returns>The subscription's snapshot.</returns>
    /// <exception cref="KeyNotFoundException">There is no such subscription.</exception>
    public SubscriptionSnapshot Subscription(string name)
    {
        foreach (SubscriptionSnapshot subscription in Subscriptions)
        {
            if (subscription.Name == name)
            {
                return subscription;
            }
        }

        throw new KeyNotFoundException($"Queue '{Name}' has no subscription '{name}' in this snapshot.");
    }

    /// <summary>Prints the members as the compiler would, and lists by their contents rather than their type name.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        var printer = new SnapshotPrinter(builder);
        printer.Member(nameof(Name), Name);
        printer.Member(nameof(PayloadType), PayloadType);
        printer.Member(nameof(IsDeadLetterQueue), IsDeadLetterQueue);
        printer.Member(nameof(MaxMessages), MaxMessages);
        printer.Member(nameof(Retention), Retention);
        printer.Member(nameof(Overflow), Overflow);
        printer.Member(nameof(Depth), Depth);
        printer.Member(nameof(LastSequence), LastSequence);
        printer.Member(nameof(Published), Published);
        printer.Member(nameof(Unrouted), Unrouted);
        printer.Member(nameof(Dropped), Dropped);
        printer.Member(nameof(Abandoned), Abandoned);
        printer.Member(nameof(DeadLettered), DeadLettered);
        printer.Member(nameof(Replayed), Replayed);
        printer.Member(nameof(Scheduled), Scheduled);
        printer.Member(nameof(PagedOut), PagedOut);
        printer.Member(nameof(Deduplicated), Deduplicated);
        printer.Member(nameof(WaitingPublishers), WaitingPublishers);
        printer.List(nameof(Subscriptions), Subscriptions);
        return printer.Printed;
    }
}
