using System.Diagnostics.CodeAnalysis;

namespace MessageQueue;

/// <summary>
/// A fixed number of recently routed event names and their routes, read without a lock and replaced slot by slot,
/// so that a miss neither copies a table nor allocates, however many distinct names come in.
/// </summary>
/// <remarks>
/// <para>Each name has one slot (by its hash); a newer name with the same slot replaces it. A slot is an object made
/// once and then rewritten in place, guarded by a sequence number (a seqlock): the writer makes it odd, writes the name
/// and the route, and makes it even again; a reader that sees the same even number before and after its reads has a
/// name and route written together. Writers hold the owning queue's lock, so there is one at a time.</para>
/// <para>A route carries the version of the subscription set it was computed for; a reader passes the current version
/// and a route of another version is a miss.</para>
/// </remarks>
internal sealed class RouteCache<T>
{
    private readonly Slot?[] _slots;
    private readonly int _mask;

    // The slot of the last hit: a publisher that keeps using one event name string finds it without hashing the name.
    private Slot? _last;

    /// <param name="capacity">The number of slots, a power of two.</param>
    public RouteCache(int capacity)
    {
        if (!int.IsPow2(capacity))
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "The route cache's capacity is a power of two.");
        }

        _slots = new Slot?[capacity];
        _mask = capacity - 1;
    }

    /// <summary>The route cached for <paramref name="eventName"/> with <paramref name="version"/>, if any.</summary>
    public bool TryGet(string eventName, int version, [NotNullWhen(true)] out Route<T>? route)
    {
        if (Volatile.Read(ref _last) is { } last && last.TryRead(eventName, version, sameString: true, out route))
        {
            return true;
        }

        if (Volatile.Read(ref _slots[SlotOf(eventName)]) is { } slot && slot.TryRead(eventName, version, sameString: false, out route))
        {
            Volatile.Write(ref _last, slot);
            return true;
        }

        route = null;
        return false;
    }

    /// <summary>Caches a route, replacing whatever had the name's slot. Under the owner's lock.</summary>
    public void Set(string eventName, Route<T> route)
    {
        ref Slot? slot = ref _slots[SlotOf(eventName)];
        if (slot is null)
        {
            // Made once per slot: after the first fill, a miss allocates nothing.
            Volatile.Write(ref slot, new Slot(eventName, route));
        }
        else
        {
            slot.Write(eventName, route);
        }

        Volatile.Write(ref _last, slot);
    }

    /// <summary>Forgets every route, so that none holds on to a subscription that is gone. Under the owner's lock.</summary>
    public void Clear()
    {
        foreach (Slot? slot in _slots)
        {
            slot?.Write(null, null);
        }
    }

    private int SlotOf(string eventName) => eventName.GetHashCode() & _mask;

    private sealed class Slot(string? eventName, Route<T>? route)
    {
        private int _sequence;
        private string? _event = eventName;
        private Route<T>? _route = route;

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
