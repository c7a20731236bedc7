using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// A queue's subscriptions and its route cache: which subscriptions an event name routes to.
/// </summary>
/// <remarks>
/// <para><b>Reads without a lock.</b> The subscription set is an array replaced (copy on write) whenever a subscription
/// comes or goes, and each change bumps a version that invalidates every cached route. The cache is a dictionary that
/// is never changed once published: a miss copies it and swaps the copy in. A publisher that keeps using the same
/// event name string is answered from <see cref="_lastRoute"/> without even hashing it.</para>
/// <para><b>Writes under the queue's lock.</b> The set changes, and a miss fills the cache, only under the owning
/// queue's lock (<see cref="_gate"/>), which the queue also holds while it walks the set to evict, drop or snapshot.
/// So the set is stable for anyone who holds that lock.</para>
/// <para><b>Bounded.</b> Event names are data: past <see cref="MaxCachedRoutes"/> the cache starts over, so that it
/// stays bounded whatever event names come in.</para>
/// </remarks>
internal sealed class RouteTable<T>
{
    /// <summary>How many event names the cache holds before it starts over.</summary>
    public const int MaxCachedRoutes = 1024;

    private readonly Lock _gate;
    private readonly int _maxEventNameLength;

    private SubscriptionState<T>[] _subscriptions = [];
    private int _version;
    private Dictionary<string, Route<T>> _routes = new(StringComparer.Ordinal);
    private Route<T>? _lastRoute;

    /// <param name="queueGate">The owning queue's lock: the set changes only under it.</param>
    /// <param name="maxEventNameLength">The longest event name a route is made for (<see cref="BrokerOptions.MaxEventNameLength"/>).</param>
    public RouteTable(Lock queueGate, int maxEventNameLength)
    {
        _gate = queueGate;
        _maxEventNameLength = maxEventNameLength;
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
        Route<T>? route = Volatile.Read(ref _lastRoute);
        if (route is not null && ReferenceEquals(route.Event, eventName) && route.Version == version)
        {
            return route;
        }

        if (Volatile.Read(ref _routes).TryGetValue(eventName, out route) && route.Version == version)
        {
            Volatile.Write(ref _lastRoute, route);
            return route;
        }

        lock (_gate)
        {
            return GetLocked(eventName);
        }
    }

    /// <summary>As <see cref="Get"/>, with the queue's lock held: the route cannot go stale until it is released.</summary>
    public Route<T> GetLocked(string eventName)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        if (_routes.TryGetValue(eventName, out Route<T>? route) && route.Version == _version)
        {
            _lastRoute = route;
            return route;
        }

        // First sight of this event name since the subscriptions last changed: validate, match, cache.
        ValidateEvent(eventName);
        var matches = new List<SubscriptionState<T>>();
        foreach (SubscriptionState<T> subscription in _subscriptions)
        {
            if (subscription.Matches(eventName))
            {
                matches.Add(subscription);
            }
        }

        route = new Route<T>(eventName, [.. matches], _version);

        // Copy on write: readers hold the old dictionary. Routes of an older version are left behind.
        var routes = new Dictionary<string, Route<T>>(Math.Min(_routes.Count + 1, MaxCachedRoutes), StringComparer.Ordinal);
        if (_routes.Count < MaxCachedRoutes)
        {
            foreach (KeyValuePair<string, Route<T>> cached in _routes)
            {
                if (cached.Value.Version == _version)
                {
                    routes.Add(cached.Key, cached.Value);
                }
            }
        }

        routes[eventName] = route;
        Volatile.Write(ref _routes, routes);
        Volatile.Write(ref _lastRoute, route);
        return route;
    }

    /// <summary>A route to one subscription only (a replayed dead letter going back to the subscription that dead-lettered it).</summary>
    public Route<T> To(SubscriptionState<T> target, string eventName) => new(eventName, [target], Volatile.Read(ref _version));

    /// <summary>Adds a subscription. Under the queue's lock.</summary>
    public void AddLocked(SubscriptionState<T> subscription)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);

        // Ids only grow, so appending keeps the array in lock order.
        Debug.Assert(_subscriptions.Length == 0 || _subscriptions[^1].Id < subscription.Id);
        Volatile.Write(ref _subscriptions, [.. _subscriptions, subscription]);
        Volatile.Write(ref _version, _version + 1);
    }

    /// <summary>Removes a subscription. Under the queue's lock.</summary>
    public void RemoveLocked(SubscriptionState<T> subscription)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        Volatile.Write(ref _subscriptions, Array.FindAll(_subscriptions, s => s != subscription));
        Volatile.Write(ref _version, _version + 1);
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
}
