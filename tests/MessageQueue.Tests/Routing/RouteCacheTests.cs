using FluentAssertions;
using Xunit;

namespace MessageQueue.Tests.Routing;

/// <summary>
/// The route cache: a reader never gets another name's route while a writer rewrites slots in place, a stale version
/// is a miss, and the table grows only when the names in use do not fit.
/// </summary>
public sealed class RouteCacheTests
{
    [Fact]
    public async Task ReadersRacingAWriter_GetEachNamesOwnRoute_OrAMiss_NeverAnothers()
    {
        // 3 000 names for a table of at most 4 096 slots in pairs: the writer keeps rewriting slots that readers read,
        // until the readers have had many hits (bounded: a run that gets none fails on the count below).
        const int Names = 3_000;
        const int MaxRounds = 10_000;
        const long EnoughHits = 200_000;
        var cache = new RouteCache<int>();
        string[] names = [.. Enumerable.Range(0, Names).Select(i => $"ep{i}.results")];
        Route<int>[] routes = [.. names.Select(_ => new Route<int>([], version: 1))];
        using var writerDone = new CancellationTokenSource();
        using var started = new CountdownEvent(2);
        long hits = 0;
        long wrong = 0;

        Task[] readers = [.. Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            started.Signal();
            int i = r;
            while (!writerDone.IsCancellationRequested)
            {
                int n = i++ % Names;

                // A copy of the name: equal, not the same string, so the reader compares the text.
                if (Get(cache, new string(names[n]), 1, out Route<int>? route))
                {
                    Interlocked.Increment(ref hits);
                    if (!ReferenceEquals(route, routes[n]))
                    {
                        Interlocked.Increment(ref wrong);
                    }
                }
            }
        }))];

        started.Wait(TimeSpan.FromSeconds(30)).Should().BeTrue("both readers started");
        for (int round = 0; round < MaxRounds && Volatile.Read(ref hits) < EnoughHits; round++)
        {
            for (int n = 0; n < Names; n++)
            {
                cache.Set(names[n], RouteCache<int>.Hash(names[n]), routes[n], version: 1);
            }
        }

        await writerDone.CancelAsync();
        await Task.WhenAll(readers);

        wrong.Should().Be(0, "a name and its route are written together, and read together or not at all");
        hits.Should().BeGreaterThanOrEqualTo(EnoughHits, "the readers read cached routes while the writer rewrote them");
        Get(cache, names[^1], 1, out Route<int>? last).Should().BeTrue();
        last.Should().BeSameAs(routes[^1]);
        Get(cache, names[^1], 2, out _).Should().BeFalse("a route of another version of the subscriptions is a miss");
    }

    [Fact]
    public void TheTable_GrowsOnlyWhenTheNamesInUseDoNotFit_UpToItsMaximum()
    {
        var cache = new RouteCache<int>();
        var route = new Route<int>([], version: 1);
        cache.Capacity.Should().Be(0, "no table until the first route");

        // As a queue uses it: a route is cached after a miss. Two names always fit, whatever their hashes: a pair holds two.
        string[] few = ["order.created", "order.paid"];
        for (int round = 0; round < 1_000; round++)
        {
            foreach (string name in few)
            {
                if (!Get(cache, name, 1, out _))
                {
                    cache.Set(name, RouteCache<int>.Hash(name), route, version: 1);
                }
            }
        }

        cache.Capacity.Should().Be(64, "two names fit the first table");

        string[] many = [.. Enumerable.Range(0, 100_000).Select(i => $"ep{i}.results")];
        foreach (string name in many)
        {
            if (!Get(cache, name, 1, out _))
            {
                cache.Set(name, RouteCache<int>.Hash(name), route, version: 1);
            }
        }

        cache.Capacity.Should().Be(RouteCache<int>.MaxCapacity);
        cache.Set("one.more", RouteCache<int>.Hash("one.more"), route, version: 1);
        Get(cache, "one.more", 1, out _).Should().BeTrue();

        cache.Clear();
        Get(cache, "one.more", 1, out _).Should().BeFalse("cleared");
    }

    // As the route table looks a name up: the last hit first, then by the name's hash.
    private static bool Get(RouteCache<int> cache, string eventName, int version, out Route<int>? route) =>
        cache.TryGetLast(eventName, version, out route) || cache.TryGet(eventName, RouteCache<int>.Hash(eventName), version, out route);
}
