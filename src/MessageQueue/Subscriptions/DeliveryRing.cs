using System.Diagnostics;
using System.Numerics;

namespace MessageQueue;

/// <summary>
/// The hand-off from a subscription to one consumer: a single-producer, single-consumer ring of deliveries, and the
/// credit that bounds it (MaxInFlight).
/// </summary>
/// <remarks>
/// <para><b>Two sides, no shared lock.</b> The publisher side (<see cref="Push"/>, <see cref="HasCredit"/>,
/// <see cref="Stopped"/>) runs under the subscription's lock; the reader side (<see cref="TryTake"/>) under the
/// consumer's table lock. The publisher writes a slot and then the pushed count; the reader takes slots up to that
/// count. Each side's positions sit on cache lines of their own (<see cref="PublisherLine"/>, <see cref="ReaderLine"/>),
/// so a publisher and a consumer on two cores do not pull a line back and forth on every message.</para>
/// <para><b>Bounded.</b> A delivery is pushed only while pushed − settled &lt; MaxInFlight (the consumer counts what
/// left it in its settled counter), and every settled delivery was read first, so a ring of MaxInFlight slots (rounded
/// up to a power of two) never overflows. It starts small and doubles, under both locks, as deliveries in flight need
/// it.</para>
/// </remarks>
internal sealed class DeliveryRing<T>
{
    private const int InitialSize = 16;
    private const int MaxSize = 1 << 30;

    private readonly Lock _readerGate;
    private readonly int _maxInFlight;
    private readonly int _maxSize;

    // Publisher side: written under the subscription's lock only. Pushed is also the write position, published with a
    // volatile write after the slot.
    private PublisherLine _publisher;
    private Item[] _slots; // replaced only under both locks

    // Reader side: written under the consumer's table lock only.
    private ReaderLine _reader;

    /// <param name="readerGate">The consumer's table lock, which readers hold, and which growing the ring takes too.</param>
    /// <param name="maxInFlight">MaxInFlight: at most this many deliveries are pushed and not yet settled.</param>
    public DeliveryRing(Lock readerGate, int maxInFlight)
    {
        _readerGate = readerGate;
        _maxInFlight = Math.Min(maxInFlight, MaxSize);
        _maxSize = (int)BitOperations.RoundUpToPowerOf2((uint)_maxInFlight);
        _slots = new Item[Math.Min(_maxSize, InitialSize)];
    }

    /// <summary>What travels through the ring: a message, its attempt number and, after a failure, its history.</summary>
    public readonly record struct Item(Message<T> Message, int Attempt, DeliveryHistory? History);

    /// <summary>MaxInFlight, as the ring bounds it.</summary>
    public int MaxInFlight => _maxInFlight;

    /// <summary>Deliveries pushed so far. Exact under the subscription's lock; a recent value otherwise.</summary>
    public long Pushed => Volatile.Read(ref _publisher.Pushed);

    /// <summary>Whether a delivery waits to be read. Read without a lock.</summary>
    public bool HasUnread => Volatile.Read(ref _publisher.Pushed) != Volatile.Read(ref _reader.Read);

    /// <summary>How many deliveries wait to be read. Read without a lock; a recent value.</summary>
    public long Unread => Volatile.Read(ref _publisher.Pushed) - Volatile.Read(ref _reader.Read);

    /// <summary>
    /// How many deliveries wait to be read as the readers last saw it: reads only the readers' own line, so a consumer can
    /// ask on every settle without touching the publisher's. Never more than <see cref="Unread"/> with one reader; with
    /// several, a racing read can make it a little high for a moment, which only puts a refill off until a later settle
    /// (or until a reader finds the ring empty).
    /// </summary>
    public long UnreadAsSeen => Volatile.Read(ref _reader.PushedSeen) - Volatile.Read(ref _reader.Read);

    /// <summary>No more pushes. Set (and read) under the subscription's lock.</summary>
    public bool Stopped
    {
        get => _publisher.Stopped;
        set => _publisher.Stopped = value;
    }

    /// <summary>
    /// True while another delivery may be pushed: not stopped, and fewer than MaxInFlight pushed and not settled. Under
    /// the subscription's lock.
    /// </summary>
    /// <param name="settled">The consumer's count of deliveries that left it, incremented with a full fence.</param>
    public bool HasCredit(ref long settled)
    {
        if (_publisher.Stopped)
        {
            return false;
        }

        if (_publisher.Pushed - _publisher.SettledSeen < _maxInFlight)
        {
            return true;
        }

        // Our copy of the settled count says full; read the real one. This is the only place the
        // publisher side reads a consumer-side cache line.
        _publisher.SettledSeen = Volatile.Read(ref settled);
        return _publisher.Pushed - _publisher.SettledSeen < _maxInFlight;
    }

    /// <summary>Pushes a delivery. Under the subscription's lock, only after <see cref="HasCredit"/>.</summary>
    /// <param name="item">The delivery.</param>
    /// <param name="settled">The consumer's count of deliveries that left it.</param>
    public void Push(in Item item, ref long settled)
    {
        Debug.Assert(!_publisher.Stopped && _publisher.Pushed - Volatile.Read(ref settled) < _maxInFlight);
        long pushed = _publisher.Pushed;
        Item[] slots = _slots;
        if (pushed - _publisher.SettledSeen >= slots.Length)
        {
            // Unread deliveries are at most pushed − settled: full only if that reaches the ring's size.
            _publisher.SettledSeen = Volatile.Read(ref settled);
            if (pushed - _publisher.SettledSeen >= slots.Length)
            {
                slots = Grow();
            }
        }

        slots[(int)pushed & (slots.Length - 1)] = item;
        Volatile.Write(ref _publisher.Pushed, pushed + 1);
    }

    /// <summary>Doubles the ring, keeping unread deliveries at their positions. Under the subscription's lock; takes the reader's.</summary>
    private Item[] Grow()
    {
        lock (_readerGate)
        {
            Item[] old = _slots;
            Debug.Assert(old.Length < _maxSize, "MaxInFlight bounds the deliveries in the ring");
            var grown = new Item[old.Length * 2];
            for (long position = _reader.Read; position < _publisher.Pushed; position++)
            {
                grown[(int)position & (grown.Length - 1)] = old[(int)position & (old.Length - 1)];
            }

            _slots = grown;
            return grown;
        }
    }

    /// <summary>Takes the next unread delivery out of the ring. Under the consumer's table lock.</summary>
    public bool TryTake(out Item item)
    {
        Debug.Assert(_readerGate.IsHeldByCurrentThread);
        long read = _reader.Read;
        if (read == _reader.PushedSeen)
        {
            _reader.PushedSeen = Volatile.Read(ref _publisher.Pushed);
            if (read == _reader.PushedSeen)
            {
                item = default;
                return false;
            }
        }

        Item[] slots = _slots;
        ref Item slot = ref slots[(int)read & (slots.Length - 1)];
        item = slot;
        slot = default; // let the message go when it is settled
        _reader.Read = read + 1;
        return true;
    }

    /// <summary>
    /// Checks the ring against the consumer's settled count: reading never passes pushing, nothing pushed is unsettled
    /// past MaxInFlight, and the slots waiting to be read fit the ring. Under both locks.
    /// </summary>
    /// <param name="settled">The consumer's count of deliveries that left it.</param>
    [Conditional("DEBUG")]
    public void AssertInvariants(long settled)
    {
        Debug.Assert(_readerGate.IsHeldByCurrentThread);
        long pushed = Volatile.Read(ref _publisher.Pushed);
        long read = _reader.Read;
        Debug.Assert(read <= pushed, "the reader never passes the publisher");
        Debug.Assert(settled <= pushed, "nothing settles before it was pushed");
        Debug.Assert(pushed - settled <= _maxInFlight, "at most MaxInFlight deliveries are in flight");
        Debug.Assert(pushed - read <= _slots.Length, "the unread deliveries fit the ring");
        Debug.Assert(BitOperations.IsPow2(_slots.Length) && _slots.Length <= _maxSize, "the ring is a power of two, at most MaxInFlight rounded up");
    }
}
