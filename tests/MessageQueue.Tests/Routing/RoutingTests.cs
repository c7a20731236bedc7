using FluentAssertions;
using MessageQueue.ContractTests;
using Xunit;

namespace MessageQueue.Tests.Routing;

/// <summary>
/// Routing through a queue's subscription trie and route cache gives exactly what testing every filter would: checked
/// against <see cref="TopicFilter.Matches"/> (the reference, proven by <see cref="TopicFilterTests"/>) over many
/// filters and names, as subscriptions come and go, and with more names than the cache holds.
/// </summary>
public sealed class RoutingTests
{
    private static readonly string[] Words = ["a", "b", "c"];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task EveryMessage_ReachesExactlyTheSubscriptionsWhoseFiltersMatch(int seed)
    {
        var random = new Random(seed);
        await using var broker = new Broker();
        broker.DeclareQueue<int>("q", new QueueOptions { MaxMessages = 100_000 });
        var subscriptions = new List<(string[] Filters, Subscription<int> Subscription)>();
        for (int s = 0; s < 60; s++)
        {
            // Some with two filters that may both match: such a subscription still gets a message once.
            string[] filters = s % 5 == 0 ? [RandomFilter(random), RandomFilter(random)] : [RandomFilter(random)];
            subscriptions.Add((filters, await broker.SubscribeAsync<int>("q", filters, new SubscriptionOptions { MaxInFlight = 10_000 })));
        }

        await PublishAndCheckAsync(broker, subscriptions, random, messages: 300);

        // Half go: the trie forgets their filters, and the routes cached before are not used again.
        for (int s = subscriptions.Count - 1; s >= 0; s -= 2)
        {
            await subscriptions[s].Subscription.DisposeAsync();
            subscriptions.RemoveAt(s);
        }

        await PublishAndCheckAsync(broker, subscriptions, random, messages: 300);

        // New ones come: routes cached before them are not used again either.
        for (int s = 0; s < 20; s++)
        {
            string[] filters = [RandomFilter(random)];
            subscriptions.Add((filters, await broker.SubscribeAsync<int>("q", filters, new SubscriptionOptions { MaxInFlight = 10_000 })));
        }

        await PublishAndCheckAsync(broker, subscriptions, random, messages: 300);
    }

    [Fact]
    public async Task MoreDistinctNamesThanTheCacheHolds_EachRoutesToItsOwnSubscriptionsOnly()
    {
        // Names with an id in them: ep0.results … ep2999.results, three times around, well past the cache's slots.
        const int Names = 3 * RouteTable<int>.MaxCachedRoutes;
        await using var broker = new Broker();
        broker.DeclareQueue<int>("q", new QueueOptions { MaxMessages = 100_000 });
        Subscription<int> every = await broker.SubscribeAsync<int>("q", "*.results", new SubscriptionOptions { MaxInFlight = 100_000 });
        Subscription<int> seven = await broker.SubscribeAsync<int>("q", "ep7.#", new SubscriptionOptions { MaxInFlight = 100_000 });
        Subscription<int> none = await broker.SubscribeAsync<int>("q", "ep.*", new SubscriptionOptions { MaxInFlight = 100_000 });
        string[] names = [.. Enumerable.Range(0, Names).Select(i => $"ep{i}.results")];

        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < Names; i++)
            {
                await broker.PublishAsync("q", names[i], i);
            }
        }

        var seen = new List<int>();
        while (every.TryRead(out Delivery<int> delivery))
        {
            seen.Add(delivery.Payload);
            await delivery.AckAsync();
        }

        seen.Should().Equal(Enumerable.Range(0, 3).SelectMany(_ => Enumerable.Range(0, Names)), "every name routes to '*.results', in order");
        var sevens = new List<int>();
        while (seven.TryRead(out Delivery<int> delivery))
        {
            sevens.Add(delivery.Payload);
            await delivery.AckAsync();
        }

        sevens.Should().Equal(7, 7, 7);
        none.TryRead(out _).Should().BeFalse("'ep.*' matches none of the names");
    }

    [Fact]
    public async Task ManyHashesInManyFilters_AgainstALongName_RouteWithoutBlowingUp()
    {
        // Several '#' per filter reach the same trie nodes by many paths; each node is walked once per word.
        await using var broker = new Broker();
        broker.DeclareQueue<int>("q", new QueueOptions { MaxMessages = 1_000 });
        var subscriptions = new List<Subscription<int>>();
        for (int i = 1; i <= 20; i++)
        {
            subscriptions.Add(await broker.SubscribeAsync<int>("q", string.Join('.', Enumerable.Repeat("#.x", i)) + ".y"));
        }

        Subscription<int> last = await broker.SubscribeAsync<int>("q", "#.x.#.y");
        string eventName = string.Join('.', Enumerable.Repeat("x", 120));

        await broker.PublishAsync("q", eventName, 1);
        await broker.PublishAsync("q", eventName + ".y", 2);

        foreach (Subscription<int> subscription in subscriptions)
        {
            subscription.TryRead(out Delivery<int> only).Should().BeTrue();
            only.Payload.Should().Be(2, "each filter matches only the name ending in 'y'");
            await only.AckAsync();
            subscription.TryRead(out _).Should().BeFalse();
        }

        last.TryRead(out Delivery<int> delivery).Should().BeTrue();
        delivery.Payload.Should().Be(2);
        await delivery.AckAsync();
    }

    private static async Task PublishAndCheckAsync(Broker broker, List<(string[] Filters, Subscription<int> Subscription)> subscriptions, Random random, int messages)
    {
        for (int m = 0; m < messages; m++)
        {
            string eventName = RandomName(random);
            await broker.PublishAsync("q", eventName, m);
            foreach ((string[] filters, Subscription<int> subscription) in subscriptions)
            {
                bool expected = filters.Any(f => TopicFilter.Parse(f).Matches(eventName));
                bool got = subscription.TryRead(out Delivery<int> delivery);
                got.Should().Be(expected, $"'{eventName}' against [{string.Join(", ", filters)}]");
                if (got)
                {
                    delivery.Payload.Should().Be(m);
                    subscription.TryRead(out _).Should().BeFalse($"'{eventName}' reaches [{string.Join(", ", filters)}] once");
                    await delivery.AckAsync();
                }
            }
        }
    }

    private static string RandomFilter(Random random)
    {
        string[] choices = ["a", "b", "c", "*", "#"];
        return string.Join('.', Enumerable.Range(0, random.Next(1, 5)).Select(_ => choices[random.Next(choices.Length)]));
    }

    private static string RandomName(Random random) =>
        string.Join('.', Enumerable.Range(0, random.Next(1, 6)).Select(_ => Words[random.Next(Words.Length)]));
}
