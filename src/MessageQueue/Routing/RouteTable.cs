using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MessageQueue;

/// <summary>
/// A queue's subscriptions and its routes: which subscriptions an event name routes to.
/// </summary>
/// <remarks>
/// <para><b>Reads without a lock.</b> The subscription set is an array replaced (copy on write) whenever a subscription
/// comes or goes, and each change bumps a version that invalidates every cached route. Routes are cached in a
/// <see cref="RouteCache{T}"/> of <see cref="MaxCachedRoutes"/> slots, read without a lock.</para>
/// <para><b>Misses under the queue's lock.</b> A name the cache does not have is matched by walking the queue's
/// <see cref="SubscriptionTrie{T}"/> word by word, so its cost grows with the name's depth, not with the number of
/// subscriptions. Routes are interned by their subscriptions: every name that reaches the same subscriptions (none, most
/// often) shares one route, so a miss allocates nothing once the distinct routes exist. The set changes, and misses are
/// filled, only under the owning queue's lock (<see cref="_gate"/>), which the queue also holds while it walks the set
/// to evict, drop or snapshot. So the set is stable for anyone who holds that lock.</para>
/// <para><b>Bounded.</b> Event names are data: the cache has a fixed number of slots, and the interned routes are
/// forgotten past <see cref="MaxInternedRoutes"/>, so memory stays bounded whatever event names come in.</para>
/// </remarks>
internal sealed class RouteTable<T>
{
    /// <summary>How many event names the cache holds at most (it starts smaller and grows as names push each other out).</summary>
    public const int MaxCachedRoutes = RouteCache<T>.MaxCapacity;

    /// <summary>How many distinct routes (sets of subscriptions) are kept for sharing before they are forgotten.</summary>
    public const int MaxInternedRoutes = 4096;

    private readonly Lock _gate;
    private readonly int _maxEventNameLength;
    private readonly SubscriptionTrie<T> _trie;
    private readonly RouteCache<T> _cache = new();

    // The distinct routes of the current version, by their subscriptions; and the walk's scratch list.
    private readonly Dictionary<RouteKey, Route<T>> _interned = new(RouteKey.Comparer);
    private readonly List<SubscriptionState<T>> _matches = [];

    private SubscriptionState<T>[] _subscriptions = [];
    private int _version;

    /// <param name="queueGate">The owning queue's lock: the set changes only under it.</param>
    /// <param name="maxEventNameLength">The longest event name a route is made for (<see cref="BrokerOptions.MaxEventNameLength"/>).</param>
    public RouteTable(Lock queueGate, int maxEventNameLength)
    {
        _gate = queueGate;
        _maxEventNameLength = maxEventNameLength;
        _trie = new SubscriptionTrie<T>(queueGate);
    }

    /// <summary>Every subscription, in id order. Stable while the queue's lock is held; a snapshot otherwise.</summary>
    public SubscriptionState<T>[] Subscriptions => Volatile.Read(ref _subscriptions);

    /// <summary>
    /// The subscriptions <paramref name="eventName"/> routes to. A publish that races with a subscribe may get the route
    /// from just before it: a subscription receives the messages published after its subscribe call returned.
    /// </summary>
    /// <exception cref="ArgumentException">The event name is not valid (checked on a cache miss only: a cached name was valid).</exception>
    public Route<T> Get(string eventName)
    {
        int version = Volatile.Read(ref _version);
        if (_cache.TryGetLast(eventName, version, out Route<T>? route))
        {
            return route;
        }

        // Hashed once: the lookup, the look again under the lock and the fill share it.
        int hash = RouteCache<T>.Hash(eventName);
        if (_cache.TryGet(eventName, hash, version, out route))
        {
            return route;
        }

        lock (_gate)
        {
            return GetLocked(eventName, hash);
        }
    }

    /// <summary>As <see cref="Get"/>, with the queue's lock held: the route cannot go stale until it is released.</summary>
    public Route<T> GetLocked(string eventName) => GetLocked(eventName, RouteCache<T>.Hash(eventName));

    private Route<T> GetLocked(string eventName, int hash)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        if (_cache.TryGet(eventName, hash, _version, out Route<T>? route))
        {
            return route;
        }

        // First sight of this name in the cache since the subscriptions last changed: validate, match, share, cache.
        ValidateEvent(eventName);
        _trie.Match(eventName, _matches);

        // In id order: the order publishers lock subscriptions in.
        CollectionsMarshal.AsSpan(_matches).Sort(static (a, b) => a.Id.CompareTo(b.Id));
        route = Intern();

        // Emptied at once, so that the scratch list holds no subscription between misses.
        _matches.Clear();
        _cache.Set(eventName, hash, route, _version);
        return route;
    }

    // The one route of this version to exactly the subscriptions in _matches, made the first time they are asked for.
    private Route<T> Intern()
    {
        var key = new RouteKey(_matches);
        if (_interned.TryGetValue(key, out Route<T>? route))
        {
            return route;
        }

        if (_interned.Count >= MaxInternedRoutes)
        {
            // Bounded: start over (the routes already handed out stay valid).
            _interned.Clear();
        }

        route = new Route<T>([.. _matches], _version);
        _interned.Add(new RouteKey(route.Subscriptions), route);
        return route;
    }

    /// <summary>A route to one subscription only (a replayed dead letter going back to the subscription that dead-lettered it).</summary>
    public Route<T> To(SubscriptionState<T> target) => new([target], Volatile.Read(ref _version));

    /// <summary>Adds a subscription. Under the queue's lock.</summary>
    public void AddLocked(SubscriptionState<T> subscription)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);

        // Ids only grow, so appending keeps the array in lock order.
        Debug.Assert(_subscriptions.Length == 0 || _subscriptions[^1].Id < subscription.Id);
        Volatile.Write(ref _subscriptions, [.. _subscriptions, subscription]);
        _trie.Add(subscription);
        ChangedLocked();
    }

    /// <summary>Removes a subscription. Under the queue's lock.</summary>
    public void RemoveLocked(SubscriptionState<T> subscription)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        Volatile.Write(ref _subscriptions, Array.FindAll(_subscriptions, s => s != subscription));
        _trie.Remove(subscription);
        ChangedLocked();

        // No cached route may keep the subscription alive.
        _cache.Clear();
    }

    // Every route made so far is now stale.
    private void ChangedLocked()
    {
        Volatile.Write(ref _version, _version + 1);
        _interned.Clear();
    }

    /// <summary>Checks an event name: the broker's rules for names, and <see cref="BrokerOptions.MaxEventNameLength"/>.</summary>
    public void ValidateEvent(string eventName)
    {
        Names.ValidateEvent(eventName, nameof(eventName));
        if (eventName.Length > _maxEventNameLength)
        {
            throw new ArgumentException(
                $"Event name '{eventName[..Math.Min(40, eventName.Length)]}…' is {eventName.Length} characters long; BrokerOptions.MaxEventNameLength allows {_maxEventNameLength}. Use a shorter event name. Nothing was published.",
                nameof(eventName));
        }
    }

    /// <summary>Checks that the subscriptions are in id order, the order publishers lock them in.</summary>
    [Conditional("DEBUG")]
    public void AssertInvariants()
    {
        SubscriptionState<T>[] subscriptions = Subscriptions;
        for (int i = 1; i < subscriptions.Length; i++)
        {
            Debug.Assert(subscriptions[i - 1].Id < subscriptions[i].Id, "subscriptions are kept in id order, the lock order");
        }
    }

    /// <summary>A set of subscriptions as a dictionary key, compared by the subscriptions it holds, in order.</summary>
    private readonly struct RouteKey
    {
        public static readonly IEqualityComparer<RouteKey> Comparer = new KeyComparer();

        // One of the two: a route's array, or the walk's scratch list (for a lookup only, so nothing is copied).
        private readonly SubscriptionState<T>[]? _array;
        private readonly List<SubscriptionState<T>>? _list;
        private readonly int _hash;

        public RouteKey(SubscriptionState<T>[] subscriptions)
        {
            _array = subscriptions;
            _hash = HashOf(subscriptions);
        }

        public RouteKey(List<SubscriptionState<T>> subscriptions)
        {
            _list = subscriptions;
            _hash = HashOf(CollectionsMarshal.AsSpan(subscriptions));
        }

        private ReadOnlySpan<SubscriptionState<T>> Subscriptions => _array ?? CollectionsMarshal.AsSpan(_list);

        private static int HashOf(ReadOnlySpan<SubscriptionState<T>> subscriptions)
        {
            var hash = default(HashCode);
            foreach (SubscriptionState<T> subscription in subscriptions)
            {
                hash.Add(subscription.Id);
            }

            return hash.ToHashCode();
        }

        private sealed class KeyComparer : IEqualityComparer<RouteKey>
        {
            public bool Equals(RouteKey x, RouteKey y)
            {
                ReadOnlySpan<SubscriptionState<T>> left = x.Subscriptions;
                ReadOnlySpan<SubscriptionState<T>> right = y.Subscriptions;
                if (x._hash != y._hash || left.Length != right.Length)
                {
                    return false;
                }

                for (int i = 0; i < left.Length; i++)
                {
                    if (!ReferenceEquals(left[i], right[i]))
                    {
                        return false;
                    }
                }

                return true;
            }

            public int GetHashCode(RouteKey key) => key._hash;
        }
    }
}

