using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace MessageQueue;

/// <summary>
/// The one place the broker reports what happens to messages. Each site where something happens (a publish, a read,
/// an ack, a drop, a dead letter…) makes one call here, and this class feeds everyone who listens: the instruments
/// (<see cref="BrokerMetrics"/>), the log (<see cref="BrokerLog"/>), the <see cref="Broker.MessageDropped"/> event, and
/// the test harness's <see cref="BrokerObserver"/>. A new metric or log line for an existing event changes this file
/// (and <see cref="BrokerMetrics"/> for the instrument itself), not the sites.
/// </summary>
/// <remarks>
/// <para><b>Two kinds of call.</b> Events (<see cref="Sent"/>, <see cref="Read{T}"/>, <see cref="Acked{T}"/>…) are
/// called after the broker has released its locks, because they reach user code: a <c>MeterListener</c>'s callback, a
/// logger, a <see cref="Broker.MessageDropped"/> handler. Notes (the methods named <c>Note…</c>) are called under the
/// lock that orders them, because the observer must hear of them in the order other threads can act on them: a message
/// is noted before any consumer can read it, a nack before its redelivery can be read. Notes reach the observer only,
/// which is internal code that is quick, never blocks and never calls back into the broker.</para>
/// <para><b>Snapshot counts are not events.</b> The counts a snapshot shows (acked, dropped, depth…) belong to the
/// queue, subscription or consumer whose state they count, and change under the same lock as that state, so that a
/// snapshot always agrees with itself.</para>
/// <para>With nobody listening, each event costs a null check and a field read or two, and allocates nothing.</para>
/// </remarks>
internal sealed class BrokerEvents
{
    private readonly Broker _broker;
    private readonly BrokerObserver? _observer;
    private readonly BrokerMetrics _metrics;
    private readonly ILogger _logger;

    public BrokerEvents(Broker broker, BrokerObserver? observer, BrokerMetrics metrics, ILogger logger)
    {
        _broker = broker;
        _observer = observer;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>The instruments, for the calls that time an operation (<see cref="PublishCall"/>, <see cref="HandlerCall"/>).</summary>
    public BrokerMetrics Metrics => _metrics;

    /// <summary>The broker's logger.</summary>
    public ILogger Logger => _logger;

    // ---------------------------------------------------------------- notes: under the lock that orders them, observer only

    /// <summary>
    /// A message took its sequence and is about to be handed to <paramref name="receivers"/> subscriptions (0: nobody
    /// took it). Under the route's locks, before any consumer can see it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void NoteEntering<T>(BrokerQueue<T> queue, Message<T> message, int receivers) =>
        _observer?.Published(queue.Name, queue.IsDeadLetterQueue, message.Id, message.Sequence, message.Event, message.Payload, typeof(T), message.Headers, receivers);

    /// <summary>Messages already in a queue were handed to <paramref name="count"/> more subscriptions (a new one starting at retained messages, recovery, or a drop on its way to the dead-letter queue).</summary>
    public void NoteReferenced(int count) => _observer?.Referenced(count);

    /// <summary>The number of messages held for delayed delivery changed; after the timer that releases them is armed.</summary>
    public void NoteScheduled(int delta) => _observer?.Scheduled(delta);

    /// <summary>A delivery was nacked: before it can be read again. <paramref name="redeliverIn"/> is null when this was its last attempt.</summary>
    public void NoteNacked<T>(SubscriptionState<T> subscription, Message<T> message, int attempt, TimeSpan? redeliverIn, string? error) =>
        _observer?.Settled(ObservedSettlement.Nacked, subscription.Queue.Name, subscription.Name, subscription.Key, message.Id, message.Sequence, message.Event, message.Payload, typeof(T), attempt, redeliverIn, error);

    /// <summary>A delivery's ack deadline passed: before it can be read again.</summary>
    public void NoteTimedOut<T>(SubscriptionState<T> subscription, Message<T> message, int attempt) =>
        _observer?.Settled(ObservedSettlement.TimedOut, subscription.Queue.Name, subscription.Name, subscription.Key, message.Id, message.Sequence, message.Event, message.Payload, typeof(T), attempt, null, null);

    /// <summary>A delivery's ack deadline was extended, under the pending table's lock so it cannot be settled meanwhile.</summary>
    public void NoteExtended<T>(SubscriptionState<T> subscription, Message<T> message, int attempt) =>
        _observer?.Settled(ObservedSettlement.Extended, subscription.Queue.Name, subscription.Name, subscription.Key, message.Id, message.Sequence, message.Event, message.Payload, typeof(T), attempt, null, null);

    /// <summary>A nacked delivery stopped waiting out its backoff (it came back, or its consumer left).</summary>
    public void NoteUnparked<T>(SubscriptionState<T> subscription) =>
        _observer?.Parked(subscription.Queue.Name, subscription.Name, subscription.Key, -1);

    // ---------------------------------------------------------------- events: after the locks are released

    /// <summary>A message entered a queue (messaging.client.sent.messages). Dead-letter queues are not counted: their messages were sent once already.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Sent(string queue, bool deadLetterQueue, string eventName)
    {
        if (!deadLetterQueue && _metrics.Sent.Enabled)
        {
            _metrics.RecordSent(queue, eventName);
        }
    }

    /// <summary>A publish matched no subscription: under interest retention nothing keeps it. It took a sequence, and counts as sent (and as unrouted, <see cref="Unrouted"/>).</summary>
    public void PublishedUnrouted<T>(BrokerQueue<T> queue, Guid id, long sequence, string eventName, T payload, IReadOnlyDictionary<string, string> headers)
    {
        _observer?.Published(queue.Name, queue.IsDeadLetterQueue, id, sequence, eventName, payload, typeof(T), headers, 0);
        Sent(queue.Name, queue.IsDeadLetterQueue, eventName);
    }

    /// <summary>A message was not kept because nothing matched it (messagequeue.messages.unrouted).</summary>
    public void Unrouted(string queue, string eventName) => _metrics.RecordUnrouted(queue, eventName);

    /// <summary>The first message that routed nowhere in a queue declared on first use: its name may be a typo (a warning, once per queue).</summary>
    public void FirstUnroutedInAutoDeclaredQueue(string queue, string eventName, int subscriptions) =>
        BrokerLog.UnroutedOnAutoDeclaredQueue(_logger, queue, eventName, subscriptions);

    /// <summary>One subscription let go of a message: settled, dropped, dead-lettered or abandoned it. After its room in the queue was freed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Released<T>(string queue, Message<T> message)
    {
        // The id is made from the sequence on demand: only when someone listens.
        if (_observer is { } observer)
        {
            observer.Released(queue, message.Id);
        }
    }

    /// <summary>A consumer read a delivery (and, with auto-ack, settled it at once).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Read<T>(SubscriptionState<T> subscription, Message<T> message, int attempt, bool autoAcked)
    {
        if (_observer is not null || _metrics.Consumed.Enabled || _metrics.Redelivered.Enabled || (autoAcked && _metrics.IsAckRecorded))
        {
            ReadSlow(subscription, message, attempt, autoAcked);
        }
    }

    private void ReadSlow<T>(SubscriptionState<T> subscription, Message<T> message, int attempt, bool autoAcked)
    {
        string queue = subscription.Queue.Name;
        if (_observer is not null)
        {
            _observer.Delivered(queue, subscription.Name, subscription.Key, message.Id, message.Sequence, message.Event, message.Payload, typeof(T), attempt);
            if (autoAcked)
            {
                _observer.Settled(ObservedSettlement.Acked, queue, subscription.Name, subscription.Key, message.Id, message.Sequence, message.Event, message.Payload, typeof(T), attempt, null, "auto-ack");
            }
        }

        _metrics.RecordConsumed(queue, subscription.Name, message.Event, attempt);
        if (autoAcked)
        {
            _metrics.RecordAcked(queue, subscription.Name, message.Event, message.TimestampTicks);
        }
    }

    /// <summary>A consumer acked a delivery.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Acked<T>(SubscriptionState<T> subscription, Message<T> message, int attempt)
    {
        if (_observer is not null || _metrics.IsAckRecorded)
        {
            AckedSlow(subscription, message, attempt);
        }
    }

    private void AckedSlow<T>(SubscriptionState<T> subscription, Message<T> message, int attempt)
    {
        _observer?.Settled(ObservedSettlement.Acked, subscription.Queue.Name, subscription.Name, subscription.Key, message.Id, message.Sequence, message.Event, message.Payload, typeof(T), attempt, null, null);
        _metrics.RecordAcked(subscription.Queue.Name, subscription.Name, message.Event, message.TimestampTicks);
    }

    /// <summary>
    /// A consumer nacked a delivery (its part under the locks was <see cref="NoteNacked{T}"/>). Before the nack returns,
    /// and before the observer hears that the delivery waits out a backoff: a test harness may move its clock as soon as
    /// it does, and the redelivery timer is armed by then.
    /// </summary>
    public void Nacked<T>(SubscriptionState<T> subscription, string eventName, bool parked)
    {
        _metrics.RecordNacked(subscription.Queue.Name, subscription.Name, eventName);
        if (parked)
        {
            _observer?.Parked(subscription.Queue.Name, subscription.Name, subscription.Key, 1);
        }
    }

    /// <summary>A consumer rejected a delivery; it goes to the dead-letter queue next (<see cref="DeadLettered{T}"/>).</summary>
    public void Rejected<T>(SubscriptionState<T> subscription, Message<T> message, int attempts, string? reason) =>
        _observer?.Settled(ObservedSettlement.Rejected, subscription.Queue.Name, subscription.Name, subscription.Key, message.Id, message.Sequence, message.Event, message.Payload, typeof(T), attempts, null, reason);

    /// <summary>
    /// A message is on its way into <paramref name="queue"/>'s dead-letter queue: told to the observer before it is
    /// there, so that the harness never sees it in neither place.
    /// </summary>
    public void DeadLettering<T>(BrokerQueue<T> queue, string? subscription, SubscriptionKey? subscriptionKey, Message<T> message, int attempts, string reason) =>
        _observer?.Settled(ObservedSettlement.DeadLettered, queue.Name, subscription, subscriptionKey, message.Id, message.Sequence, message.Event, message.Payload, typeof(T), attempts, null, reason);

    /// <summary>A message is in <paramref name="queue"/>'s dead-letter queue (messagequeue.messages.dead_lettered, and the log).</summary>
    public void DeadLettered<T>(BrokerQueue<T> queue, string? subscription, Message<T> message, int attempts, string reason)
    {
        _metrics.RecordDeadLettered(queue.Name, subscription, message.Event, reason);
        BrokerLog.DeadLettered(_logger, message.Id, message.Event, message.Sequence, queue.Name, subscription ?? string.Empty, attempts, reason);
    }

    /// <summary>A message was dropped: counted, logged, and raised as <see cref="Broker.MessageDropped"/>.</summary>
    public void Dropped(MessageDroppedEventArgs dropped) => Dropped([dropped]);

    /// <summary>Messages were dropped: each counted, logged, and raised as <see cref="Broker.MessageDropped"/>.</summary>
    public void Dropped(List<MessageDroppedEventArgs>? dropped)
    {
        if (dropped is null)
        {
            return;
        }

        foreach (MessageDroppedEventArgs args in dropped)
        {
            _metrics.RecordDropped(args);
            if (args.Reason == DropReason.DeadLetterDiscarded)
            {
                // Meant for a dead-letter queue that does not exist, or could not take it: worth a warning each time.
                BrokerLog.Dropped(_logger, args.MessageId, args.Event, args.Sequence, args.Queue, args.Subscription ?? string.Empty, args.Reason);
            }
            else
            {
                BrokerLog.DroppedByPolicy(_logger, args.MessageId, args.Event, args.Sequence, args.Queue, args.Subscription ?? string.Empty, args.Reason);
            }
        }

        _broker.RaiseMessageDropped(dropped);
    }

    /// <summary>A subscription fell further behind than its MaxBacklog and was cut loose.</summary>
    public void CutLoose(string queue, string? subscription, int consumers, int dropped) =>
        BrokerLog.CutLoose(_logger, subscription ?? "(ephemeral)", queue, consumers, dropped);

    /// <summary>A publish or subscribe was denied.</summary>
    public void Denied(string client, string operation, string queue, string eventOrFilter, string reason)
    {
        _metrics.RecordDenied(operation, queue);
        BrokerLog.AuthorizationDenied(_logger, client, operation, queue, eventOrFilter, reason);
    }

    /// <summary>The broker started, with or without a store.</summary>
    public void Started(int storedQueues, string? store)
    {
        if (store is null)
        {
            BrokerLog.StartedInMemory(_logger);
        }
        else
        {
            BrokerLog.Started(_logger, storedQueues, store);
        }
    }

    /// <summary>A durable queue could not read its next page of stored messages (the store failed, or a payload cannot be read): it reads nothing more.</summary>
    public void PagingFailed(string queue, Exception exception) => BrokerLog.PagingFailed(_logger, exception, queue);

    /// <summary>The broker stopped.</summary>
    public void Stopped(int queues, int consumers, int unsettled) => BrokerLog.Stopped(_logger, queues, consumers, unsettled);
}
