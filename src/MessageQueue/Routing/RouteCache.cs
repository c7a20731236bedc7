using System.Diagnostics.CodeAnalysis;

namespace MessageQueue;

/// <summary>
/// Recently routed event names and their routes, read without a lock and replaced slot by slot, so that a miss
/// neither copies a table nor allocates, however many distinct names come in.
/// </summary>
/// <remarks>
/// <para>Two-way set associative: a name may sit in either slot of its pair (by its hash). A new name takes a free or
/// stale slot of its pair, else pushes the pair's older name out. The table starts small and grows (by four, up to
/// <see cref="MaxCapacity"/> slots) only when names keep pushing each other out, so a queue with a few event names stays
/// small and one whose names carry ids gets the room. Each table is made with all its slots, so a miss allocates
/// nothing once the table has stopped growing.</para>
/// <para>A slot is an object made once and then rewritten in place, guarded by a sequence number (a seqlock): the
/// writer makes it odd, writes the name and the route, and makes it even again; a reader that sees the same even
/// number before and after its reads has a name and route written together. Writers hold the owning queue's lock, so
/// there is one at a time.</para>
/// <para>A route carries the version of the subscription set it was computed for; a reader passes the current version
/// and a route of another version is a miss.</para>
/// </remarks>
internal sealed class RouteCache<T>
{
    /// <summary>
    /// The most slots a queue's cache grows to: about 200 KB of slots, plus the names they hold (up to
    /// <see cref="BrokerOptions.MaxEventNameLength"/> characters each).
    /// </summary>
    public const int MaxCapacity = 4096;

    private const int InitialCapacity = 64;

    // Empty until the first route is cached: a queue nobody publishes to (a dead-letter queue, most often) holds none.
    private Slot[] _slots = [];

    // Names pushed out of a full pair since the table last grew. Under the owner's lock.
    private int _pushedOut;

    // The slot of the last hit: a publisher that keeps using one event name string finds it without hashing the name.
    private Slot? _last;

    /// <summary>The current number of slots.</summary>
    public int Capacity => Volatile.Read(ref _slots).Length;

    /// <summary>The hash that places a name: computed once per lookup and passed to <see cref="TryGet"/> and <see cref="Set"/>.</summary>
    public static int Hash(string eventName) => eventName.GetHashCode();

    /// <summary>The route of the last hit, when <paramref name="eventName"/> is the same string: no hashing.</summary>
    public bool TryGetLast(string eventName, int version, [NotNullWhen(true)] out Route<T>? route)
    {
        if (Volatile.Read(ref _last) is { } last && last.TryRead(eventName, version, sameString: true, out route))
        {
            return true;
        }

        route = null;
        return false;
    }

    /// <summary>The route cached for <paramref name="eventName"/> (whose <see cref="Hash"/> is <paramref name="hash"/>) with <paramref name="version"/>, if any.</summary>
    public bool TryGet(string eventName, int hash, int version, [NotNullWhen(true)] out Route<T>? route)
    {
        Slot[] slots = Volatile.Read(ref _slots);
        if (slots.Length > 0)
        {
            int pair = hash & (slots.Length - 2);
            if (slots[pair].TryRead(eventName, version, sameString: false, out route))
            {
                Remember(slots[pair]);
                return true;
            }

            if (slots[pair + 1].TryRead(eventName, version, sameString: false, out route))
            {
                Remember(slots[pair + 1]);
                return true;
            }
        }

        route = null;
        return false;
    }

    /// <summary>Caches a route of the current <paramref name="version"/>. Under the owner's lock.</summary>
    public void Set(string eventName, int hash, Route<T> route, int version)
    {
        Slot[] slots = _slots;
        if (slots.Length == 0)
        {
            slots = Grow(InitialCapacity);
        }

        int pair = hash & (slots.Length - 2);
        Slot first = slots[pair];
        Slot second = slots[pair + 1];
        Slot target;
        if (!first.IsCurrent(version))
        {
            target = first;
        }
        else if (!second.IsCurrent(version))
        {
            target = second;
        }
        else if (slots.Length < MaxCapacity && ++_pushedOut > slots.Length)
        {
            // The names in use do not fit: grow. The table starts over with this name; the others come back as used.
            slots = Grow(slots.Length * 4);
            target = slots[hash & (slots.Length - 2)];
        }
        else
        {
            // Both current: push out the two in turn (the first slot keeps the turn), one rewrite per miss.
            target = first.SecondGoesNext ? second : first;
            first.SecondGoesNext = !first.SecondGoesNext;
        }

        target.Write(eventName, route);
        Volatile.Write(ref _last, target);
    }

    /// <summary>Forgets every route, so that none holds on to a subscription that is gone. Under the owner's lock.</summary>
    public void Clear()
    {
        foreach (Slot slot in _slots)
        {
            slot.Write(null, null);
        }

        Volatile.Write(ref _last, null);
    }

    // The slot of a hit, for the next lookup of the same string; written only when it changes, so that publishers
    // hitting one name from several threads do not keep writing a shared field.
    private void Remember(Slot slot)
    {
        if (!ReferenceEquals(Volatile.Read(ref _last), slot))
        {
            Volatile.Write(ref _last, slot);
        }
    }

    // A table with every slot made, so that filling it allocates nothing.
    private Slot[] Grow(int capacity)
    {
        var slots = new Slot[capacity];
        for (int i = 0; i < slots.Length; i++)
        {
            slots[i] = new Slot();
        }

        Slot[] old = _slots;
        _pushedOut = 0;
        Volatile.Write(ref _slots, slots);

        // The old table's slots are emptied: a publisher that read one before the swap may still make it the last
        // hit, and it must not keep a route (and the subscriptions in it) alive after they are gone.
        foreach (Slot slot in old)
        {
            slot.Write(null, null);
        }

        return slots;
    }

    private sealed class Slot
    {
        private int _sequence;
        private string? _event;
        private Route<T>? _route;

        /// <summary>For the first slot of a pair: whether the second is the next to be pushed out. Under the owner's lock.</summary>
        public bool SecondGoesNext { get; set; }

        /// <summary>Whether it holds a route of <paramref name="version"/>. Under the owner's lock.</summary>
        public bool IsCurrent(int version) => _route is { } route && route.Version == version;

        public bool TryRead(string eventName, int version, bool sameString, [NotNullWhen(true)] out Route<T>? route)
        {
            // Acquire reads throughout: the second read of the sequence cannot move before the reads of the fields.
            int sequence = Volatile.Read(ref _sequence);
            string? cached = Volatile.Read(ref _event);
            route = Volatile.Read(ref _route);
            if ((sequence & 1) == 0
                && Volatile.Read(ref _sequence) == sequence
                && route is not null
                && route.Version == version
                && (ReferenceEquals(cached, eventName) || (!sameString && string.Equals(cached, eventName, StringComparison.Ordinal))))
            {
                return true;
            }

            route = null;
            return false;
        }

        public void Write(string? eventName, Route<T>? route)
        {
            int sequence = _sequence;

            // Odd while it changes, and seen to be odd before either field changes.
            Interlocked.Exchange(ref _sequence, sequence + 1);
            Volatile.Write(ref _event, eventName);
            Volatile.Write(ref _route, route);
            Volatile.Write(ref _sequence, sequence + 2);
        }
    }
}
