using Microsoft.Extensions.Logging;

namespace MessageQueue;

/// <summary>
/// The broker's log messages (category <c>MessageQueue</c>), source-generated. They name queues, subscriptions, events,
/// message ids and reasons; they never include payloads or header values. Nothing is logged on the path of a message
/// that is published, delivered and acked: only what went wrong, or the broker's start and stop.
/// </summary>
internal static partial class BrokerLog
{
    [LoggerMessage(101, LogLevel.Warning, "Message {MessageId} ('{Event}', sequence {Sequence}) was dropped from queue '{Queue}' for subscription '{Subscription}': {Reason}")]
    public static partial void Dropped(ILogger logger, Guid messageId, string @event, long sequence, string queue, string subscription, DropReason reason);

    // The same event at Debug, for drops a declared policy makes on purpose (DropOldest, Limits retention, MaxBacklog,
    // time to live): under load they come one per publish, and the dropped counter gives their volume.
    [LoggerMessage(101, LogLevel.Debug, "Message {MessageId} ('{Event}', sequence {Sequence}) was dropped from queue '{Queue}' for subscription '{Subscription}': {Reason}")]
    public static partial void DroppedByPolicy(ILogger logger, Guid messageId, string @event, long sequence, string queue, string subscription, DropReason reason);

    [LoggerMessage(102, LogLevel.Information, "Message {MessageId} ('{Event}', sequence {Sequence}) of queue '{Queue}' went to the dead-letter queue from subscription '{Subscription}' after {Attempts} attempts: {Reason}")]
    public static partial void DeadLettered(ILogger logger, Guid messageId, string @event, long sequence, string queue, string subscription, int attempts, string reason);

    [LoggerMessage(103, LogLevel.Warning, "The handler of subscription '{Subscription}' on queue '{Queue}' failed on message {MessageId} ('{Event}', attempt {Attempt}); it is nacked")]
    public static partial void HandlerFailed(ILogger logger, Exception error, string subscription, string queue, Guid messageId, string @event, int attempt);

    [LoggerMessage(104, LogLevel.Warning, "Subscription '{Subscription}' on queue '{Queue}' fell further behind than its MaxBacklog and was cut loose: {Consumers} consumers closed, {Dropped} messages dropped")]
    public static partial void CutLoose(ILogger logger, string subscription, string queue, int consumers, int dropped);

    [LoggerMessage(105, LogLevel.Warning, "Client '{Client}' was denied {Operation} on queue '{Queue}', event or filter '{Event}': {Reason}")]
    public static partial void AuthorizationDenied(ILogger logger, string client, string operation, string queue, string @event, string reason);

    [LoggerMessage(106, LogLevel.Information, "Message broker started: {StoredQueues} queues in its store ({Store})")]
    public static partial void Started(ILogger logger, int storedQueues, string store);

    [LoggerMessage(108, LogLevel.Information, "Message broker started in memory, without a store: messages live as long as the process")]
    public static partial void StartedInMemory(ILogger logger);

    // Once per queue: a queue declared on first use whose first message routes nowhere is most often a misspelt name.
    // Later unrouted messages are counted (QueueSnapshot.Unrouted, messagequeue.messages.unrouted), not logged.
    [LoggerMessage(109, LogLevel.Warning, "Queue '{Queue}' was declared on first use (BrokerOptions.AutoDeclareQueues) and message '{Event}' published to it matched none of its {Subscriptions} subscriptions, so it was not kept. If the queue name is a typo, correct it; otherwise subscribe before publishing, or declare the queue with DeclareQueue. Further messages that match no subscription here are counted as Unrouted in the snapshot and by messagequeue.messages.unrouted, without this warning")]
    public static partial void UnroutedOnAutoDeclaredQueue(ILogger logger, string queue, string @event, int subscriptions);

    [LoggerMessage(110, LogLevel.Error, "Queue '{Queue}' stopped reading its stored messages back into memory: its subscriptions receive nothing more that waits in the store, and what is published to it from now on is stored but not delivered until the broker starts again. Nothing is lost: the messages stay in the store and come back after the restart. Fix the cause and restart")]
    public static partial void PagingFailed(ILogger logger, Exception exception, string queue);

    [LoggerMessage(107, LogLevel.Information, "Message broker stopped: {Queues} queues, {Consumers} consumers detached, {Unsettled} deliveries still unsettled went back to their subscriptions")]
    public static partial void Stopped(ILogger logger, int queues, int consumers, int unsettled);
}
