using System.Collections.Frozen;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace MessageQueue;

/// <summary>
/// An immutable envelope around one published payload. One instance is shared by every
/// subscription that receives the message, so payloads should be immutable too (records work well).
/// </summary>
/// <typeparam name="T">The payload type of the queue the message was published to.</typeparam>
public sealed class Message<T>
{
    // Interest-retention reference count: how many subscriptions still hold this message. The top
    // bit marks a message that a DropOldest overflow evicted while some consumer still had it in
    // flight; such a message no longer counts towards its queue's depth. See Release/Evict.
    private const int EvictedBit = 1 << 30;
    private int _refs;

    private readonly long _timestampTicks;

    // What most messages share with every other message of their queue: the queue's name and how its ids are made (a
    // MessageOrigin); or, for a message with headers, a time to live or an id of its own, those (a MessageExtras).
    // Keeping them out of the envelope makes it 64 bytes, one cache line: what a publisher hands a consumer on another
    // core, and what a message waiting in a backlog costs.
    private readonly object _context;

    /// <summary>
    /// Creates the envelope of a message a transport received, for an implementation of <see cref="Subscription{T}"/>
    /// on another transport to hand out in its deliveries. The broker creates its own messages; application code never
    /// needs this constructor.
    /// </summary>
    /// <param name="id">The message id, as the publisher set it.</param>
    /// <param name="queue">The queue the message was published to.</param>
    /// <param name="eventName">The event name it was published with.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="sequence">The message's position in its queue, as far as the transport knows it.</param>
    /// <param name="timestamp">When it was published; converted to UTC.</param>
    /// <param name="headers">Its headers; <see langword="null"/> for none.</param>
    /// <param name="expiresAt">When it expires; <see langword="null"/> if it never does.</param>
    /// <exception cref="ArgumentNullException"><paramref name="queue"/> or <paramref name="eventName"/> is null.</exception>
    public Message(Guid id, string queue, string eventName, T payload, long sequence, DateTimeOffset timestamp, IReadOnlyDictionary<string, string>? headers = null, DateTimeOffset? expiresAt = null)
        : this(
            id,
            queue ?? throw new ArgumentNullException(nameof(queue)),
            eventName ?? throw new ArgumentNullException(nameof(eventName)),
            payload,
            sequence,
            timestamp.UtcTicks,
            headers ?? FrozenDictionary<string, string>.Empty,
            expiresAt?.UtcTicks ?? 0)
    {
    }

    internal Message(
        Guid id,
        string queue,
        string eventName,
        T payload,
        long sequence,
        long timestampTicks,
        IReadOnlyDictionary<string, string> headers,
        long expiresAtTicks = 0)
        : this(new MessageExtras(queue, id, headers, expiresAtTicks), eventName, payload, sequence, timestampTicks)
    {
    }

    /// <summary>A message of a broker queue: its id, queue name, headers and expiry come from <paramref name="context"/>.</summary>
    /// <param name="context">The queue's <see cref="MessageOrigin"/> (an id made from the sequence, no headers, no expiry) or a <see cref="MessageExtras"/>.</param>
    /// <param name="eventName">The event name.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="sequence">The sequence in the queue.</param>
    /// <param name="timestampTicks">When it was published, in UTC ticks.</param>
    internal Message(object context, string eventName, T payload, long sequence, long timestampTicks)
    {
        Debug.Assert(context is MessageOrigin or MessageExtras);
        _context = context;
        Event = eventName;
        Payload = payload;
        Sequence = sequence;
        _timestampTicks = timestampTicks;
    }

    /// <summary>Gets the message id, unique within the broker's store.</summary>
    public Guid Id => _context is MessageOrigin origin ? origin.Ids.For(Sequence) : Unsafe.As<MessageExtras>(_context).Id;

    /// <summary>Gets the name of the queue the message was published to.</summary>
    public string Queue => _context is MessageOrigin origin ? origin.Queue : Unsafe.As<MessageExtras>(_context).Queue;

    /// <summary>Gets the event name the message was published with, such as <c>"delete"</c> or <c>"ep42.results"</c>.</summary>
    public string Event { get; }

    /// <summary>Gets the payload.</summary>
    public T Payload { get; }

    /// <summary>Gets the position of the message in its queue. Sequences start at 1 and increase by 1 per published message.</summary>
    public long Sequence { get; }

    /// <summary>
    /// Gets the time the message was published, in UTC, from the broker's <see cref="TimeProvider"/>, read
    /// as the publish began. Concurrent publishes can carry timestamps slightly out of order; <see cref="Sequence"/> is the order.
    /// </summary>
    public DateTimeOffset Timestamp => new(_timestampTicks, TimeSpan.Zero);

    /// <summary>Gets the headers the message was published with. Never <see langword="null"/>.</summary>
    public IReadOnlyDictionary<string, string> Headers =>
        _context is MessageExtras extras ? extras.Headers : FrozenDictionary<string, string>.Empty;

    /// <summary>
    /// Gets when the message expires (UTC), or <see langword="null"/> if it never does. An expired message is
    /// never delivered; see <see cref="PublishOptions.TimeToLive"/>.
    /// </summary>
    public DateTimeOffset? ExpiresAt => ExpiresAtTicks == 0 ? null : new DateTimeOffset(ExpiresAtTicks, TimeSpan.Zero);

    /// <summary>UTC ticks at which the message expires; 0 when it never does.</summary>
    internal long ExpiresAtTicks => _context is MessageExtras extras ? extras.ExpiresAtTicks : 0;

    /// <summary>UTC ticks of <see cref="Timestamp"/>.</summary>
    internal long TimestampTicks => _timestampTicks;

    /// <inheritdoc/>
    public override string ToString() => $"{Queue}#{Sequence} {Event}";

    /// <summary>Sets the number of subscriptions the message was routed to. Called once, before anyone can see it.</summary>
    internal void InitializeReferences(int subscriptions)
    {
        Debug.Assert(subscriptions > 0 && subscriptions < EvictedBit);
        _refs = subscriptions;
    }

    /// <summary>Records one more subscription holding the message: a new subscription starting at retained messages.</summary>
    internal void AddReference() => Interlocked.Increment(ref _refs);

    /// <summary>
    /// Records that one subscription has let go of the message (settled, dropped or abandoned it).
    /// </summary>
    /// <returns><see langword="true"/> when this was the last holder and the message still counted
    /// towards its queue's depth, so the caller must free one unit of depth.</returns>
    internal bool Release() => Release(out _);

    /// <summary>As <see cref="Release()"/>; <paramref name="last"/> says whether this was the last holder, evicted or not.</summary>
    internal bool Release(out bool last)
    {
        int now = Interlocked.Decrement(ref _refs);
        Debug.Assert((now & ~EvictedBit) >= 0, "released more often than routed");
        last = (now & ~EvictedBit) == 0;
        return now == 0;
    }

    /// <summary>
    /// Stops the message from counting towards its queue's depth while consumers may still hold
    /// it in flight. Used by DropOldest, which removes a message from every backlog at once.
    /// </summary>
    /// <returns><see langword="true"/> when the caller must free one unit of depth.</returns>
    internal bool Evict()
    {
        while (true)
        {
            int current = Volatile.Read(ref _refs);
            if ((current & EvictedBit) != 0 || current == 0)
            {
                // Already evicted, or the last Release already freed the depth.
                return false;
            }

            if (Interlocked.CompareExchange(ref _refs, current | EvictedBit, current) == current)
            {
                return true;
            }
        }
    }
}
