using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.Persistence;
using Xunit;

namespace MessageQueue.Tests.Authorization;

/// <summary>Limits that keep one client, or one call, from exhausting the process: each refused with a clear error, nothing changed, the broker still working.</summary>
[Trait("Guarantee", "8")]
public sealed class LimitsTests
{
    [Fact]
    public async Task SubscriptionsPerClient_AreBounded_TheBrokersOwnAreNot()
    {
        await using var broker = new Broker(new BrokerOptions { MaxSubscriptionsPerClient = 2 });
        await using BrokerClient client = broker.Connect("greedy");
        Subscription<TestEvent> first = await client.SubscribeAsync<TestEvent>("a", "#");
        await using Subscription<TestEvent> second = await client.SubscribeAsync<TestEvent>("b", "#");

        Func<Task> third = async () => await client.SubscribeAsync<TestEvent>("c", "#");
        (await third.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should()
            .Be("Client 'greedy' holds 2 subscriptions, the most BrokerOptions.MaxSubscriptionsPerClient allows (2). Dispose subscriptions it no longer needs, or raise the limit.");

        await first.DisposeAsync();
        await using Subscription<TestEvent> again = await client.SubscribeAsync<TestEvent>("c", "#");
        for (int i = 0; i < 3; i++)
        {
            await using Subscription<TestEvent> own = await broker.SubscribeAsync<TestEvent>("d", "#");
        }
    }

    [Fact]
    public async Task EventNameLength_IsBounded()
    {
        await using var broker = new Broker(new BrokerOptions { MaxEventNameLength = 10 });
        await using Subscription<TestEvent> reader = await broker.SubscribeAsync<TestEvent>("q", "#");

        Func<Task> tooLong = () => broker.PublishAsync("q", "abcdefghijk", new TestEvent(1)).AsTask();
        (await tooLong.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("is 11 characters long; BrokerOptions.MaxEventNameLength allows 10");
        await broker.PublishAsync("q", "abcdefghij", new TestEvent(2));

        (await reader.ReadAsync()).Payload.Number.Should().Be(2);
        broker.GetSnapshot().Queue("q").Published.Should().Be(1);
    }

    [Fact]
    public async Task EventNameLength_OnAFullLimitsQueue_IsCheckedBeforeAnythingIsEvicted()
    {
        await using var broker = new Broker(new BrokerOptions { MaxEventNameLength = 10 });
        broker.DeclareQueue<TestEvent>("log", new QueueOptions { Retention = RetentionPolicy.Limits, MaxMessages = 2, Overflow = OverflowPolicy.DropOldest });
        await broker.PublishAsync("log", "e", new TestEvent(1));
        await broker.PublishAsync("log", "e", new TestEvent(2));

        await FluentActions.Awaiting(() => broker.PublishAsync("log", "abcdefghijk", new TestEvent(3)).AsTask()).Should().ThrowAsync<ArgumentException>();

        QueueSnapshot log = broker.GetSnapshot().Queue("log");
        log.Dropped.Should().Be(0, "the refused publish evicted nothing");
        log.Depth.Should().Be(2);
        log.Published.Should().Be(2);
    }

    [Fact]
    public async Task HeadersLength_IsBounded()
    {
        await using var broker = new Broker(new BrokerOptions { MaxHeadersLength = 20 });
        await using Subscription<TestEvent> reader = await broker.SubscribeAsync<TestEvent>("q", "#");

        Func<Task> tooMuch = () => broker.PublishAsync("q", "e", new TestEvent(1), new PublishOptions { Headers = new Dictionary<string, string> { ["tenant"] = "a-very-long-val" } }).AsTask();
        (await tooMuch.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("The headers hold 21 characters (names and values); BrokerOptions.MaxHeadersLength allows 20");
        await broker.PublishAsync("q", "e", new TestEvent(2), new PublishOptions { Headers = new Dictionary<string, string> { ["tenant"] = "a-very-long-va" } });

        Delivery<TestEvent> delivered = await reader.ReadAsync();
        delivered.Payload.Number.Should().Be(2, "only the publish within the limit went through");
        delivered.Message.Headers["tenant"].Should().Be("a-very-long-va");
    }

    [Fact]
    public async Task TraceContextHeaders_AreFreeOnlyWithinTheirW3CBounds()
    {
        await using var broker = new Broker(new BrokerOptions { MaxHeadersLength = 20 });
        await using Subscription<TestEvent> reader = await broker.SubscribeAsync<TestEvent>("q", "#");
        const string TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        TraceParent.Length.Should().Be(55);

        // A real trace context is not counted: turning tracing on never makes a publish that fits fail.
        await broker.PublishAsync("q", "e", new TestEvent(1), new PublishOptions
        {
            Headers = new Dictionary<string, string> { ["traceparent"] = TraceParent, ["tracestate"] = "vendor=" + new string('v', 505) },
        });

        // Anything else under those names counts like any header.
        foreach ((string name, string value) in new[] { ("traceparent", new string('x', 1_000_000)), ("tracestate", new string('x', 513)), ("traceparent", TraceParent + "x") })
        {
            Func<Task> smuggled = () => broker.PublishAsync("q", "e", new TestEvent(2), new PublishOptions { Headers = new Dictionary<string, string> { [name] = value } }).AsTask();
            (await smuggled.Should().ThrowAsync<ArgumentException>(name)).Which.Message.Should().Contain("BrokerOptions.MaxHeadersLength allows 20");
        }

        Delivery<TestEvent> delivered = await reader.ReadAsync();
        delivered.Payload.Number.Should().Be(1);
        await delivered.AckAsync();
        broker.GetSnapshot().Queue("q").Depth.Should().Be(0, "none of the refused publishes took room");
    }

    [Fact]
    public async Task PersistedPayloadSize_IsBounded_BeforeAnythingIsStored()
    {
        await using var broker = new Broker(new BrokerOptions { Store = new InMemoryMessageStore(), MaxPersistedPayloadSize = 64 });
        await using Subscription<TestEvent> reader = await broker.SubscribeAsync<TestEvent>("q", "#", new SubscriptionOptions { Name = "worker" });

        Func<Task> big = () => broker.PublishAsync("q", "e", new TestEvent(1, new string('x', 100))).AsTask();
        (await big.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().MatchRegex("The payload serialized to [0-9]+ bytes; durable queue 'q' stores at most 64");
        await broker.PublishAsync("q", "e", new TestEvent(2, "small"));

        (await reader.ReadAsync()).Payload.Number.Should().Be(2);
        broker.GetSnapshot().Queue("q").Depth.Should().Be(1, "the refused publish took no room");
    }

    [Fact]
    public void BadLimits_AreRefused_AllAtOnce()
    {
        Action create = () => _ = new Broker(new BrokerOptions { MaxSubscriptionsPerClient = 0, MaxEventNameLength = 300, MaxHeadersLength = -1, MaxPersistedPayloadSize = 0 });
        ArgumentException error = create.Should().Throw<ArgumentException>().Which;
        error.Message.Should().Contain("MaxSubscriptionsPerClient is 0").And.Contain("MaxEventNameLength is 300; it must be between 1 and 255")
            .And.Contain("MaxHeadersLength is -1").And.Contain("MaxPersistedPayloadSize is 0");
    }
}
