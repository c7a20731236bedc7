using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Tests.Diagnostics;
using Microsoft.Extensions.Logging;
using Xunit;

namespace MessageQueue.Tests.Authorization;

/// <summary>Guarantee 8: with rules, a client publishes and subscribes only where its identity is allowed; deny wins; a denied call changes nothing.</summary>
[Trait("Guarantee", "8")]
public sealed class AuthorizationTests
{
    /// <summary>The seed's scheme: every endpoint publishes only its own results; the service reads them all.</summary>
    private static Broker SeedScheme(LogSink? logs = null) => new(Options(
        logs,
        AuthorizationRule.AllowPublish("*", "results", "{client}.results"),
        AuthorizationRule.AllowSubscribe("service", "results", "*.results")));

    public static TheoryData<string, BrokerOperation, string, string, bool> SeedMatrix() => new()
    {
        { "ep42", BrokerOperation.Publish, "results", "ep42.results", true },
        { "ep42", BrokerOperation.Publish, "results", "ep41.results", false },
        { "ep42", BrokerOperation.Publish, "results", "results", false },
        { "ep42", BrokerOperation.Publish, "orders", "ep42.results", false },
        { "ep41", BrokerOperation.Publish, "results", "ep41.results", true },
        { "ep42", BrokerOperation.Subscribe, "results", "ep42.results", false },
        { "ep42", BrokerOperation.Subscribe, "results", "*.results", false },
        { "service", BrokerOperation.Subscribe, "results", "*.results", true },
        { "service", BrokerOperation.Subscribe, "results", "ep42.results", true },
        { "service", BrokerOperation.Subscribe, "results", "#", false },
        { "service", BrokerOperation.Subscribe, "results", "*.*", false },
        { "service", BrokerOperation.Publish, "results", "service.results", true },
        { "service", BrokerOperation.Publish, "results", "ep42.results", false },
    };

    [Theory]
    [MemberData(nameof(SeedMatrix))]
    public async Task SeedScheme_AllowsExactlyWhatItSays(string client, BrokerOperation operation, string queue, string eventOrFilter, bool allowed)
    {
        await using Broker broker = SeedScheme();
        broker.DeclareQueue<TestEvent>("results");
        broker.DeclareQueue<TestEvent>("orders");
        await using BrokerClient connection = broker.Connect(client);

        Func<Task> call = operation == BrokerOperation.Publish
            ? () => connection.PublishAsync(queue, eventOrFilter, new TestEvent(1)).AsTask()
            : async () => await (await connection.SubscribeAsync<TestEvent>(queue, eventOrFilter)).DisposeAsync();

        if (allowed)
        {
            await call.Should().NotThrowAsync();
        }
        else
        {
            BrokerAuthorizationException denied = (await call.Should().ThrowAsync<BrokerAuthorizationException>()).Which;
            denied.Should().BeAssignableTo<UnauthorizedAccessException>();
            denied.Client.Should().Be(client);
            denied.Operation.Should().Be(operation);
            denied.Queue.Should().Be(queue);
            denied.Event.Should().Be(eventOrFilter);
            denied.Message.Should().Contain($"Client '{client}'").And.Contain($"queue '{queue}'").And.Contain($"'{eventOrFilter}'").And.Contain("add an AuthorizationRule");
        }
    }

    [Fact]
    public async Task NoRules_AllowsEverything()
    {
        await using var broker = new Broker();
        await using BrokerClient anyone = broker.Connect("anyone");
        await using Subscription<TestEvent> all = await anyone.SubscribeAsync<TestEvent>("results", "#");
        await anyone.PublishAsync("results", "anything.at.all", new TestEvent(1));
        (await all.ReadAsync()).Payload.Number.Should().Be(1);
    }

    [Fact]
    public async Task DenyWins_OverAnAllowThatAlsoMatches()
    {
        await using var broker = new Broker(Options(
            null,
            AuthorizationRule.AllowPublish("*", "orders", "#"),
            AuthorizationRule.DenyPublish("*", "orders", "admin.*"),
            AuthorizationRule.AllowSubscribe("*", "orders", "#"),
            AuthorizationRule.DenySubscribe("*", "orders", "admin.*")));
        await using BrokerClient client = broker.Connect("shop");

        await client.PublishAsync("orders", "order.created", new TestEvent(1));
        Func<Task> admin = () => client.PublishAsync("orders", "admin.delete", new TestEvent(2)).AsTask();
        (await admin.Should().ThrowAsync<BrokerAuthorizationException>()).Which.Message.Should().Contain("rule DenyPublish(*, orders, admin.*) denies it");

        await using Subscription<TestEvent> orders = await client.SubscribeAsync<TestEvent>("orders", "order.*");
        Func<Task> everything = async () => await client.SubscribeAsync<TestEvent>("orders", "#");
        (await everything.Should().ThrowAsync<BrokerAuthorizationException>()).Which.Message.Should().Contain("denies it", "'#' would receive admin events");
        Func<Task> adminOnly = async () => await client.SubscribeAsync<TestEvent>("orders", "admin.delete");
        await adminOnly.Should().ThrowAsync<BrokerAuthorizationException>();
    }

    [Fact]
    public async Task QueuePatterns_AndPerClientRules()
    {
        await using var broker = new Broker(Options(
            null,
            AuthorizationRule.AllowPublish("ep42", "tenant.{client}", "#"),
            AuthorizationRule.AllowPublish("ep42", "audit.*", "login")));
        await using BrokerClient ep42 = broker.Connect("ep42");
        await using BrokerClient ep41 = broker.Connect("ep41");

        await ep42.PublishAsync("tenant.ep42", "x", new TestEvent(1));
        await ep42.PublishAsync("audit.eu", "login", new TestEvent(1));
        await FluentActions.Awaiting(() => ep42.PublishAsync("tenant.ep41", "x", new TestEvent(1)).AsTask()).Should().ThrowAsync<BrokerAuthorizationException>();
        await FluentActions.Awaiting(() => ep42.PublishAsync("audit.eu", "logout", new TestEvent(1)).AsTask()).Should().ThrowAsync<BrokerAuthorizationException>();
        await FluentActions.Awaiting(() => ep41.PublishAsync("tenant.ep41", "x", new TestEvent(1)).AsTask()).Should().ThrowAsync<BrokerAuthorizationException>("the rules are ep42's");
    }

    [Fact]
    public async Task ADeniedPublish_LeavesEveryQueueUnchanged_AndIsCountedAndLogged()
    {
        var logs = new LogSink();
        await using Broker broker = SeedScheme(logs);
        using var metrics = new MetricRecorder(broker);
        broker.DeclareQueue<TestEvent>("results");
        await using BrokerClient service = broker.Connect("service");
        await using BrokerClient ep42 = broker.Connect("ep42");
        await using Subscription<TestEvent> all = await service.SubscribeAsync<TestEvent>("results", "*.results");
        await ep42.PublishAsync("results", "ep42.results", new TestEvent(1));
        BrokerSnapshot before = broker.GetSnapshot();

        for (int i = 0; i < 3; i++)
        {
            await FluentActions.Awaiting(() => ep42.PublishAsync("results", "ep41.results", new TestEvent(2)).AsTask()).Should().ThrowAsync<BrokerAuthorizationException>();
        }

        FluentActions.Invoking(() => ep42.TryPublish("results", "ep41.results", new TestEvent(3), out _)).Should().Throw<BrokerAuthorizationException>();

        BrokerSnapshot after = broker.GetSnapshot();
        after.Queue("results").Should().BeEquivalentTo(before.Queue("results"), "a denied publish enqueues nothing, anywhere");
        after.Queues.Select(q => (q.Name, q.Published, q.Depth)).Should().Equal(before.Queues.Select(q => (q.Name, q.Published, q.Depth)));
        (await all.ReadAsync()).Payload.Number.Should().Be(1);
        all.TryRead(out _).Should().BeFalse("nothing of the denied publishes was delivered");
        metrics.Sum("messagequeue.authorization.denials", ("messaging.operation.name", "publish"), ("messaging.destination.name", "results")).Should().Be(4);
        metrics.Of("messagequeue.authorization.denials").Should().AllSatisfy(r => r.Tags.Keys.Should().NotContain("messagequeue.client"), "client names are unbounded, so they are not tags");
        logs.WithEvent(105).Should().HaveCount(4).And.AllSatisfy(e => e.Message.Should().Be("Client 'ep42' was denied publish on queue 'results', event or filter 'ep41.results': no rule allows it"));
    }

    [Fact]
    public async Task ADeniedSubscribe_CreatesNothing_AndTheNameStaysFree()
    {
        await using Broker broker = SeedScheme();
        using var metrics = new MetricRecorder(broker);
        broker.DeclareQueue<TestEvent>("results");
        await using BrokerClient ep42 = broker.Connect("ep42");
        await using BrokerClient service = broker.Connect("service");
        BrokerSnapshot before = broker.GetSnapshot();

        Func<Task> eavesdrop = async () => await ep42.SubscribeAsync<TestEvent>("results", "*.results", new SubscriptionOptions { Name = "audit" });
        (await eavesdrop.Should().ThrowAsync<BrokerAuthorizationException>()).Which.Should().Match<BrokerAuthorizationException>(e =>
            e.Client == "ep42" && e.Operation == BrokerOperation.Subscribe && e.Queue == "results" && e.Event == "*.results");

        BrokerSnapshot after = broker.GetSnapshot();
        after.Queue("results").Subscriptions.Should().BeEmpty("a denied subscribe creates no subscription, durable or not");
        after.Clients.Single(c => c.Name == "ep42").Consumers.Should().BeEmpty();
        after.Queues.Select(q => (q.Name, q.Depth)).Should().Equal(before.Queues.Select(q => (q.Name, q.Depth)));
        metrics.Sum("messagequeue.authorization.denials", ("messaging.operation.name", "subscribe")).Should().Be(1);

        // The durable name was not taken: the allowed client subscribes under it, from the start, and gets what follows.
        await using Subscription<TestEvent> audit = await service.SubscribeAsync<TestEvent>("results", "*.results", new SubscriptionOptions { Name = "audit" });
        await ep42.PublishAsync("results", "ep42.results", new TestEvent(1));
        (await audit.ReadAsync()).Payload.Number.Should().Be(1);
    }

    [Theory]
    [InlineData("#")]
    [InlineData("*")]
    [InlineData("a.b")]
    public async Task AClientName_ThatLooksLikeAPattern_CannotWidenAPlaceholderRule(string name)
    {
        await using var broker = new Broker(Options(
            null,
            AuthorizationRule.AllowPublish("*", "results", "{client}.results"),
            AuthorizationRule.AllowSubscribe("*", "inbox", "{client}.#"),
            AuthorizationRule.AllowPublish("*", "orders", "#"),
            AuthorizationRule.DenyPublish("*", "orders", "{client}.secret")));
        await using BrokerClient client = broker.Connect(name);

        await FluentActions.Awaiting(() => client.PublishAsync("results", "alice.results", new TestEvent(1)).AsTask()).Should().ThrowAsync<BrokerAuthorizationException>();
        await FluentActions.Awaiting(async () => await client.SubscribeAsync<TestEvent>("inbox", "#")).Should().ThrowAsync<BrokerAuthorizationException>();
        await FluentActions.Awaiting(() => client.PublishAsync("orders", "alice.secret", new TestEvent(1)).AsTask()).Should().ThrowAsync<BrokerAuthorizationException>("a deny rule with {client} applies to such a name as if it were '#'");
        await client.PublishAsync("orders", "order.created", new TestEvent(1));
    }

    [Fact]
    public async Task ADeadLetterQueue_IsJudgedByItsSourceQueuesRules()
    {
        await using var broker = new Broker(Options(
            null,
            AuthorizationRule.AllowSubscribe("*", "#", "#"),
            AuthorizationRule.DenySubscribe("*", "secret", "#")));
        await using BrokerClient client = broker.Connect("curious");

        await FluentActions.Awaiting(async () => await client.SubscribeAsync<TestEvent>(Broker.GetDeadLetterQueueName("secret"), "#")).Should().ThrowAsync<BrokerAuthorizationException>();
        await using Subscription<TestEvent> open = await client.SubscribeAsync<TestEvent>(Broker.GetDeadLetterQueueName("public"), "#");
    }

    [Fact]
    public async Task TheBrokersOwnCalls_AreTheApplications_AndAreNotChecked()
    {
        await using Broker broker = SeedScheme();
        await using Subscription<TestEvent> all = await broker.SubscribeAsync<TestEvent>("results", "#");
        await broker.PublishAsync("results", "anything", new TestEvent(1));
        (await all.ReadAsync()).Payload.Number.Should().Be(1);
    }

    [Fact]
    public void InvalidRules_AreRefusedWhenTheBrokerIsCreated_AllAtOnce()
    {
        Action create = () => _ = new Broker(Options(
            null,
            AuthorizationRule.AllowPublish("", "results", "#"),
            AuthorizationRule.AllowPublish("*", "results", "a..b"),
            AuthorizationRule.DenySubscribe("*", "bad queue", "#")));
        ArgumentException error = create.Should().Throw<ArgumentException>().Which;
        error.Message.Should().Contain("AllowPublish(, results, #): the client must be a client name or '*'");
        error.Message.Should().Contain("AllowPublish(*, results, a..b): the event pattern is not valid");
        error.Message.Should().Contain("DenySubscribe(*, bad queue, #): the queue pattern is not valid");
    }

    private static BrokerOptions Options(LogSink? logs, params AuthorizationRule[] rules)
    {
        var options = new BrokerOptions();
        if (logs is not null)
        {
            options.LoggerFactory = LoggerFactory.Create(builder => builder.AddProvider(logs));
        }

        foreach (AuthorizationRule rule in rules)
        {
            options.AuthorizationRules.Add(rule);
        }

        return options;
    }
}
