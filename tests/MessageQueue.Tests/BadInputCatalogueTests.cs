using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests;

/// <summary>
/// The catalogue of bad input. Each case must fail with a clear exception that names the problem and
/// says what to do, and afterwards the broker must go on working with nothing lost: a durable
/// subscription holding messages (one of them in flight) delivers and settles all of them.
/// </summary>
public sealed class BadInputCatalogueTests : IAsyncLifetime
{
    private const string Control = "control";
    private Broker _broker = null!;
    private Subscription<TestEvent> _keeper = null!;
    private Delivery<TestEvent> _inFlight;

    public async Task InitializeAsync()
    {
        // No shutdown wait: every test holds _inFlight read and unsettled until its last step, so after a failed
        // assertion a dispose that waited for it would hold the failure back for the whole ShutdownTimeout.
        _broker = new Broker(new BrokerOptions { ShutdownTimeout = TimeSpan.Zero });
        _broker.DeclareQueue<TestEvent>("orders");
        _keeper = await _broker.SubscribeAsync<TestEvent>(Control, "#", new SubscriptionOptions { Name = "keeper" });
        for (int i = 1; i <= 3; i++)
        {
            await _broker.PublishAsync(Control, "e", new TestEvent(i));
        }

        _inFlight = await _keeper.ReadAsync();
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    /// <summary>A bad call, the exception it must raise, and a piece of text its message must contain.</summary>
    private sealed record BadInput(Func<Broker, Task> Act, Type Expected, string MessagePart);

    private static Task Publish(Broker broker, string queue, string eventName) => broker.PublishAsync(queue, eventName, new TestEvent(0)).AsTask();

    private static Task Subscribe(Broker broker, string queue, IEnumerable<string> filters, SubscriptionOptions? options = null) =>
        broker.SubscribeAsync<TestEvent>(queue, filters, options).AsTask();

    private static readonly Dictionary<string, BadInput> Cases = new()
    {
        // Queue names
        ["queue name null"] = new(b => Publish(b, null!, "e"), typeof(ArgumentNullException), "queue"),
        ["queue name empty"] = new(b => Publish(b, "", "e"), typeof(ArgumentException), "Queue name is empty"),
        ["queue name with a space"] = new(b => Publish(b, "my queue", "e"), typeof(ArgumentException), "use only letters, digits"),
        ["queue name starting with a dot"] = new(b => Publish(b, ".orders", "e"), typeof(ArgumentException), "must start with a letter or digit"),
        ["queue name with a reserved $"] = new(b => Publish(b, "orders$", "e"), typeof(ArgumentException), "reserved for the broker"),
        ["queue name too long"] = new(b => Publish(b, new string('q', 201), "e"), typeof(ArgumentException), "the limit is 200"),
        ["subscribe to an invalid queue name"] = new(b => Subscribe(b, "bad queue", ["#"]), typeof(ArgumentException), "Queue name"),

        // Event names
        ["event name null"] = new(b => Publish(b, "orders", null!), typeof(ArgumentNullException), "eventName"),
        ["event name empty"] = new(b => Publish(b, "orders", ""), typeof(ArgumentException), "Event name is empty"),
        ["event name with an empty word"] = new(b => Publish(b, "orders", "a..b"), typeof(ArgumentException), "empty word"),
        ["event name with a leading dot"] = new(b => Publish(b, "orders", ".a"), typeof(ArgumentException), "empty word"),
        ["event name with a trailing dot"] = new(b => Publish(b, "orders", "a."), typeof(ArgumentException), "empty word"),
        ["event name with a wildcard word"] = new(b => Publish(b, "orders", "orders.*"), typeof(ArgumentException), "wildcards belong in subscription filters"),
        ["event name with # inside a word"] = new(b => Publish(b, "orders", "a#b"), typeof(ArgumentException), "reserved for filters"),
        ["event name with white space"] = new(b => Publish(b, "orders", "order created"), typeof(ArgumentException), "white space"),
        ["event name with a control character"] = new(b => Publish(b, "orders", "order\ncreated"), typeof(ArgumentException), "control characters"),
        ["event name too long"] = new(b => Publish(b, "orders", new string('e', 256)), typeof(ArgumentException), "the limit is 255"),

        // Filters
        ["filter list null"] = new(b => Subscribe(b, "orders", null!), typeof(ArgumentNullException), "filters"),
        ["filter list empty"] = new(b => Subscribe(b, "orders", []), typeof(ArgumentException), "No filters were given"),
        ["filter null"] = new(b => Subscribe(b, "orders", [null!]), typeof(ArgumentNullException), "filters"),
        ["filter empty"] = new(b => Subscribe(b, "orders", [""]), typeof(ArgumentException), "Filter is empty"),
        ["filter with # inside a word"] = new(b => Subscribe(b, "orders", ["a.#b"]), typeof(ArgumentException), "must stand alone as a whole word"),
        ["filter with * inside a word"] = new(b => Subscribe(b, "orders", ["a*"]), typeof(ArgumentException), "must stand alone as a whole word"),
        ["filter with an empty word"] = new(b => Subscribe(b, "orders", ["a..b"]), typeof(ArgumentException), "empty word"),
        ["filter with white space"] = new(b => Subscribe(b, "orders", ["a b"]), typeof(ArgumentException), "white space"),

        // Payloads
        ["payload null"] = new(b => b.PublishAsync<TestEvent>("orders", "e", null!).AsTask(), typeof(ArgumentNullException), "publish an empty record"),
        ["payload null with TryPublish"] = new(b => Task.Run(() => b.TryPublish<TestEvent>("orders", "e", null!, out _)), typeof(ArgumentNullException), "publish an empty record"),
        ["payload null from a client"] = new(b => b.Connect("publisher").PublishAsync<TestEvent>("orders", "e", null!).AsTask(), typeof(ArgumentNullException), "publish an empty record"),
        ["payload null into a queue of object"] = new(b => b.PublishAsync<object>("anything", "e", null!).AsTask(), typeof(ArgumentNullException), "queue 'anything' ('e') is null"),
        ["nullable value payload without a value"] = new(b => b.PublishAsync<int?>("numbers", "e", null).AsTask(), typeof(ArgumentNullException), "publish an empty record"),

        // Types
        ["payload of the wrong type"] = new(b => b.PublishAsync("orders", "e", 42).AsTask(), typeof(ArgumentException), "carries payloads of type"),
        ["subscribe with the wrong type"] = new(b => b.SubscribeAsync<string>("orders", "#").AsTask(), typeof(ArgumentException), "subscribe with SubscribeAsync<TestEvent>"),
        ["declare an existing queue with another type"] = new(b => Task.Run(() => b.DeclareQueue<string>("orders")), typeof(InvalidOperationException), "Declare it once"),

        // Options
        ["MaxInFlight zero"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { MaxInFlight = 0 }), typeof(ArgumentException), "MaxInFlight is 0; it must be at least 1"),
        ["MaxInFlight negative"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { MaxInFlight = -5 }), typeof(ArgumentException), "MaxInFlight is -5"),
        ["subscription name invalid"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { Name = "my sub" }), typeof(ArgumentException), "Name 'my sub'"),
        ["subscription options with two problems"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { Name = "$x", MaxInFlight = 0 }), typeof(ArgumentException), "2 problems"),
        ["queue options with three problems"] = new(
            b => Task.Run(() => b.DeclareQueue<TestEvent>("fresh", new QueueOptions { MaxMessages = 0, Overflow = (OverflowPolicy)9, PublishTimeout = TimeSpan.FromSeconds(-1) })),
            typeof(ArgumentException),
            "3 problems"),
        ["memory window zero"] = new(
            b => Task.Run(() => b.DeclareQueue<TestEvent>("fresh", new QueueOptions { MaxMessagesInMemory = 0 })),
            typeof(ArgumentException),
            "MaxMessagesInMemory is 0; it must be at least 1"),
        ["publish timeout too long for the queue"] = new(
            b => Task.Run(() => b.DeclareQueue<TestEvent>("fresh", new QueueOptions { PublishTimeout = TimeSpan.FromDays(60) })),
            typeof(ArgumentException),
            "the longest finite timeout"),
        ["publish timeout too long for one publish"] = new(
            b => b.PublishAsync("orders", "e", new TestEvent(0), new PublishOptions { Timeout = TimeSpan.MaxValue }).AsTask(),
            typeof(ArgumentOutOfRangeException),
            "the longest finite timeout"),
        ["publish timeout zero for one publish"] = new(
            b => b.PublishAsync("orders", "e", new TestEvent(0), new PublishOptions { Timeout = TimeSpan.Zero }).AsTask(),
            typeof(ArgumentOutOfRangeException),
            "it must be positive"),
        ["shutdown timeout too long"] = new(
            _ => Task.Run(() => new Broker(new BrokerOptions { ShutdownTimeout = TimeSpan.FromDays(60) })),
            typeof(ArgumentException),
            "the longest finite timeout"),
        ["MaxQueues zero"] = new(_ => Task.Run(() => new Broker(new BrokerOptions { MaxQueues = 0 })), typeof(ArgumentException), "MaxQueues is 0"),
        ["more queues than MaxQueues"] = new(
            async _ =>
            {
                await using var small = new Broker(new BrokerOptions { MaxQueues = 2 });
                await small.PublishAsync("one", "e", new TestEvent(0));
                await small.PublishAsync("two", "e", new TestEvent(0));
                await small.PublishAsync("three", "e", new TestEvent(0));
            },
            typeof(InvalidOperationException),
            "BrokerOptions.MaxQueues"),
        ["replay a dead-letter queue by its own name"] = new(b => b.ReplayDeadLettersAsync("orders.$dlq").AsTask(), typeof(ArgumentException), "pass the name of the queue its dead letters came from"),
        ["replay an unknown queue"] = new(b => b.ReplayDeadLettersAsync("unknown").AsTask(), typeof(QueueNotFoundException), "does not exist"),
        ["replay at most zero"] = new(b => b.ReplayDeadLettersAsync("orders", new ReplayOptions { MaxMessages = 0 }).AsTask(), typeof(ArgumentOutOfRangeException), "at least 1"),
        ["replay with an invalid filter"] = new(b => b.ReplayDeadLettersAsync("orders", new ReplayOptions { Filter = "a.#b" }).AsTask(), typeof(ArgumentException), "must stand alone"),
        ["AckTimeout zero"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { AckTimeout = TimeSpan.Zero }), typeof(ArgumentException), "AckTimeout is 00:00:00; it must be positive"),
        ["MaxDeliveries zero"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { MaxDeliveries = 0 }), typeof(ArgumentException), "MaxDeliveries is 0"),
        ["RedeliveryDelays null"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { RedeliveryDelays = null! }), typeof(ArgumentException), "RedeliveryDelays is null"),
        ["RedeliveryDelays negative and infinite"] = new(
            b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { RedeliveryDelays = [TimeSpan.FromSeconds(-1), Timeout.InfiniteTimeSpan] }),
            typeof(ArgumentException),
            "2 problems"),
        ["time to live zero"] = new(b => b.PublishAsync("orders", "e", new TestEvent(0), new PublishOptions { TimeToLive = TimeSpan.Zero }).AsTask(), typeof(ArgumentOutOfRangeException), "TimeToLive is 00:00:00; it must be positive"),
        ["deliver after negative"] = new(b => b.PublishAsync("orders", "e", new TestEvent(0), new PublishOptions { DeliverAfter = TimeSpan.FromSeconds(-1) }).AsTask(), typeof(ArgumentOutOfRangeException), "zero or positive"),
        ["deliver after infinite"] = new(b => b.PublishAsync("orders", "e", new TestEvent(0), new PublishOptions { DeliverAfter = Timeout.InfiniteTimeSpan }).AsTask(), typeof(ArgumentOutOfRangeException), "never be delivered"),
        ["deliver after and not before together"] = new(
            b => b.PublishAsync("orders", "e", new TestEvent(0), new PublishOptions { DeliverAfter = TimeSpan.FromSeconds(1), NotBefore = DateTimeOffset.MaxValue }).AsTask(),
            typeof(ArgumentException),
            "give one or the other"),
        ["message id empty"] = new(b => b.PublishAsync("orders", "e", new TestEvent(0), new PublishOptions { MessageId = Guid.Empty }).AsTask(), typeof(ArgumentException), "Guid.Empty"),
        ["held message with an invalid event name"] = new(b => b.PublishAsync("orders", "a..b", new TestEvent(0), new PublishOptions { DeliverAfter = TimeSpan.FromSeconds(1) }).AsTask(), typeof(ArgumentException), "empty word"),
        ["queue options: infinite deduplication window and zero capacity"] = new(
            b => Task.Run(() => b.DeclareQueue<TestEvent>("fresh", new QueueOptions { DeduplicationWindow = Timeout.InfiniteTimeSpan, DeduplicationCapacity = 0, TimeToLive = TimeSpan.Zero })),
            typeof(ArgumentException),
            "3 problems"),
        ["limits retention with overflow Wait"] = new(
            b => Task.Run(() => b.DeclareQueue<TestEvent>("fresh", new QueueOptions { Retention = RetentionPolicy.Limits })),
            typeof(ArgumentException),
            "Use Overflow DropOldest"),
        ["MaxAge on an interest queue"] = new(
            b => Task.Run(() => b.DeclareQueue<TestEvent>("fresh", new QueueOptions { MaxAge = TimeSpan.FromMinutes(1) })),
            typeof(ArgumentException),
            "applies only to Limits retention"),
        ["dead-letter drops without a dead-letter queue"] = new(
            b => Task.Run(() => b.DeclareQueue<TestEvent>("fresh", new QueueOptions { DeadLetters = false, DeadLetterDrops = true })),
            typeof(ArgumentException),
            "Turn DeadLetters on, or DeadLetterDrops off"),
        ["start position on an interest queue"] = new(
            b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { StartAt = StartPosition.FromSequence(1) }),
            typeof(ArgumentException),
            "can only start at new messages"),
        ["exclusive without a name"] = new(
            b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { Exclusive = ExclusiveMode.Reject }),
            typeof(ArgumentException),
            "only a named (durable) subscription can be exclusive"),
        ["standby without a name, reported with the other problems"] = new(
            b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { Exclusive = ExclusiveMode.Standby, MaxInFlight = 0 }),
            typeof(ArgumentException),
            "2 problems"),
        ["exclusive mode not defined"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { Exclusive = (ExclusiveMode)7 }), typeof(ArgumentException), "not an ExclusiveMode value"),
        ["MaxBacklog negative"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { MaxBacklog = -1 }), typeof(ArgumentException), "MaxBacklog is -1"),
        ["backlog overflow not defined"] = new(b => Subscribe(b, "orders", ["#"], new SubscriptionOptions { BacklogOverflow = (BacklogOverflowPolicy)5 }), typeof(ArgumentException), "not a BacklogOverflowPolicy value"),
        ["exclusive subscribe while another consumer holds it"] = new(
            b => Subscribe(b, Control, ["#"], new SubscriptionOptions { Name = "keeper", Exclusive = ExclusiveMode.Reject }),
            typeof(SubscriptionInUseException),
            "is held by client '$broker'"),
        ["declare an existing queue with other options"] = new(b => Task.Run(() => b.DeclareQueue<TestEvent>("orders", new QueueOptions { MaxMessages = 1 })), typeof(InvalidOperationException), "cannot be declared again"),
        ["broker options with two problems"] = new(
            _ => Task.Run(() => new Broker(new BrokerOptions { TimeProvider = null!, ShutdownTimeout = TimeSpan.FromSeconds(-2) })),
            typeof(ArgumentException),
            "2 problems"),
        ["header with a null value"] = new(
            b => b.PublishAsync("orders", "e", new TestEvent(0), new PublishOptions { Headers = new Dictionary<string, string> { ["k"] = null! } }).AsTask(),
            typeof(ArgumentException),
            "has a null value"),
        ["header with an empty name"] = new(
            b => b.PublishAsync("orders", "e", new TestEvent(0), new PublishOptions { Headers = new Dictionary<string, string> { [""] = "v" } }).AsTask(),
            typeof(ArgumentException),
            "header name is null or empty"),

        // Clients
        ["client name empty"] = new(b => Task.Run(() => b.Connect("")), typeof(ArgumentException), "name"),
        ["client name reserved"] = new(b => Task.Run(() => b.Connect("$me")), typeof(ArgumentException), "reserved for the broker's built-in client"),

        // State
        ["publish into a dead-letter queue"] = new(b => Publish(b, "orders.$dlq", "e"), typeof(InvalidOperationException), "Publish to the source queue"),
        ["reuse a durable name with other filters"] = new(b => Subscribe(b, Control, ["other"], new SubscriptionOptions { Name = "keeper" }), typeof(InvalidOperationException), "already exists with the filters"),
        ["delete a subscription that has consumers"] = new(b => b.DeleteSubscriptionAsync(Control, "keeper").AsTask(), typeof(InvalidOperationException), "dispose them before deleting"),
        ["delete a subscription of an unknown queue"] = new(b => b.DeleteSubscriptionAsync("unknown", "x").AsTask(), typeof(QueueNotFoundException), "does not exist"),
        ["unknown queue when queues are not declared on first use"] = new(
            async _ =>
            {
                await using var strict = new Broker(new BrokerOptions { AutoDeclareQueues = false });
                await strict.PublishAsync("unknown", "e", new TestEvent(0));
            },
            typeof(QueueNotFoundException),
            "Declare it with DeclareQueue"),
    };

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (string name in Cases.Keys)
        {
            data.Add(name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task BadInput_FailsClearlyAndTheBrokerLosesNothing(string name)
    {
        BadInput bad = Cases[name];

        Exception? thrown = null;
        try
        {
            await bad.Act(_broker);
        }
        catch (Exception e)
        {
            thrown = e;
        }

        thrown.Should().NotBeNull($"'{name}' must be refused");
        thrown.Should().BeOfType(bad.Expected, $"'{name}' has a specific exception type");
        thrown!.Message.Should().Contain(bad.MessagePart, $"the message for '{name}' must name the problem");
        await ControlStillDeliversEverythingAsync();
    }

    public static TheoryData<string> CancellableOperations() =>
    [
        "PublishAsync", "SubscribeAsync", "SubscribeAsync with a handler", "ReadAsync", "WaitToReadAsync",
        "AckAsync", "NackAsync", "NackAsync with a delay", "RejectAsync", "ExtendAsync", "DeleteSubscriptionAsync", "ReplayDeadLettersAsync",
    ];

    [Theory]
    [MemberData(nameof(CancellableOperations))]
    public async Task CancelledToken_EveryAwaitableOperation_ThrowsCanceledAndChangesNothing(string operation)
    {
        using var cancellation = new CancellationTokenSource();
        await cancellation.CancelAsync();
        CancellationToken cancelled = cancellation.Token;
        Subscription<TestEvent> spare = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "spare" });
        await _broker.PublishAsync("orders", "e", new TestEvent(1));
        Delivery<TestEvent> pending = await spare.ReadAsync();
        await spare.DisposeAsync();
        Subscription<TestEvent> reader = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "spare" });
        pending = await reader.ReadAsync();
        BrokerSnapshot before = _broker.GetSnapshot();

        Func<Task> act = operation switch
        {
            "PublishAsync" => () => _broker.PublishAsync("orders", "e", new TestEvent(2), cancellationToken: cancelled).AsTask(),
            "SubscribeAsync" => () => _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { Name = "never" }, cancelled).AsTask(),
            "SubscribeAsync with a handler" => () => _broker.SubscribeAsync<TestEvent>("orders", "#", (_, _) => ValueTask.CompletedTask, new SubscriptionOptions { Name = "never" }, cancelled).AsTask(),
            "ReadAsync" => () => reader.ReadAsync(cancelled).AsTask(),
            "WaitToReadAsync" => () => reader.WaitToReadAsync(cancelled).AsTask(),
            "AckAsync" => () => pending.AckAsync(cancelled).AsTask(),
            "NackAsync" => () => pending.NackAsync(cancelled).AsTask(),
            "NackAsync with a delay" => () => pending.NackAsync(TimeSpan.FromSeconds(1), cancelled).AsTask(),
            "ExtendAsync" => () => pending.ExtendAsync(cancelled).AsTask(),
            "ReplayDeadLettersAsync" => () => _broker.ReplayDeadLettersAsync("orders", cancellationToken: cancelled).AsTask(),
            "RejectAsync" => () => pending.RejectAsync("no", cancelled).AsTask(),
            "DeleteSubscriptionAsync" => () => _broker.DeleteSubscriptionAsync(Control, "keeper", cancelled).AsTask(),
            _ => throw new ArgumentOutOfRangeException(nameof(operation)),
        };

        await act.Should().ThrowAsync<OperationCanceledException>();

        Describe(_broker.GetSnapshot()).Should().Equal(Describe(before), "a cancelled call changes nothing");
        (await pending.AckAsync()).Should().BeTrue("the delivery is still pending after the cancelled call");
        await reader.DisposeAsync();
        await ControlStillDeliversEverythingAsync();
    }

    [Fact]
    public async Task NullPayload_EveryWayToPublish_IsRefusedNamingThePayload_NothingIsPublished_AndTheNextPublishIsDelivered()
    {
        var rules = new BrokerOptions { ShutdownTimeout = TimeSpan.Zero };
        rules.AuthorizationRules.Add(AuthorizationRule.AllowPublish("*", "orders", "#"));
        await using var guarded = new Broker(rules);
        await using BrokerClient checkedClient = guarded.Connect("checked");
        await using Subscription<TestEvent> reader = await _broker.SubscribeAsync<TestEvent>("orders", "#");
        await using Subscription<TestEvent> guardedReader = await guarded.SubscribeAsync<TestEvent>("orders", "#");
        await using BrokerClient client = _broker.Connect("plain");

        var refused = new List<(string Way, Exception? Error)>
        {
            ("Broker.PublishAsync", await Catch(() => _broker.PublishAsync<TestEvent>("orders", "created", null!).AsTask())),
            ("Broker.TryPublish", await Catch(() => Task.FromResult(_broker.TryPublish<TestEvent>("orders", "created", null!, out _)))),
            ("Broker.TryPublish with options", await Catch(() => Task.FromResult(_broker.TryPublish<TestEvent>("orders", "created", null!, new PublishOptions(), out _)))),
            ("BrokerClient.PublishAsync", await Catch(() => client.PublishAsync<TestEvent>("orders", "created", null!).AsTask())),
            ("BrokerClient.TryPublish", await Catch(() => Task.FromResult(client.TryPublish<TestEvent>("orders", "created", null!, out _)))),
            ("int? without a value", await Catch(() => _broker.PublishAsync<int?>("numbers", "created", null).AsTask())),
            ("an authorized client's PublishAsync", await Catch(() => checkedClient.PublishAsync<TestEvent>("orders", "created", null!).AsTask())),
            ("an authorized client's TryPublish", await Catch(() => Task.FromResult(checkedClient.TryPublish<TestEvent>("orders", "created", null!, out _)))),
        };

        foreach ((string way, Exception? error) in refused)
        {
            ArgumentNullException refusal = error.Should().BeOfType<ArgumentNullException>($"{way} must refuse a null payload").Subject;
            refusal.ParamName.Should().Be("payload", way);
            refusal.Message.Should().Contain("queue '").And.Contain("is null; a message must carry a payload").And.Contain("publish an empty record", way);
        }

        QueueSnapshot orders = _broker.GetSnapshot().Queue("orders");
        (orders.Published, orders.LastSequence, orders.Unrouted, orders.Depth).Should().Be((0L, 0L, 0L, 0), "nothing was published, not even unrouted");
        reader.TryRead(out _).Should().BeFalse();
        guarded.GetSnapshot().Queue("orders").Published.Should().Be(0);

        PublishReceipt next = await client.PublishAsync("orders", "created", new TestEvent(5));
        next.Sequence.Should().Be(1, "the refused publishes took no sequence");
        Delivery<TestEvent> delivered = await reader.ReadAsync().OrHang("the publish after the refused ones");
        (delivered.Payload, delivered.Message.Sequence).Should().Be((new TestEvent(5), 1L));
        (await delivered.AckAsync()).Should().BeTrue();
        (await _broker.PublishAsync<int?>("numbers", "created", 3)).Sequence.Should().Be(1, "a nullable value type with a value is a payload");
        await checkedClient.PublishAsync("orders", "created", new TestEvent(6));
        (await guardedReader.ReadAsync().OrHang("the authorized client's publish after its refused ones")).Payload.Number.Should().Be(6);
        await ControlStillDeliversEverythingAsync();
    }

    private static async Task<Exception?> Catch(Func<Task> act)
    {
        try
        {
            await act();
            return null;
        }
        catch (Exception error)
        {
            return error;
        }
    }

    [Fact]
    public async Task DisposedClient_EveryOperation_ThrowsObjectDisposedNamingTheClient()
    {
        BrokerClient client = _broker.Connect("gone");
        await client.DisposeAsync();
        await client.DisposeAsync();

        await FluentActions.Awaiting(async () => await client.PublishAsync("orders", "e", new TestEvent(1)))
            .Should().ThrowAsync<ObjectDisposedException>().WithMessage("*Client 'gone' was disposed*");
        FluentActions.Invoking(() => client.TryPublish("orders", "e", new TestEvent(1), out _)).Should().Throw<ObjectDisposedException>();
        await FluentActions.Awaiting(async () => await client.SubscribeAsync<TestEvent>("orders", "#")).Should().ThrowAsync<ObjectDisposedException>();
        await ControlStillDeliversEverythingAsync();
    }

    /// <summary>Every queue and subscription figure, one line each, for before/after comparisons.</summary>
    private static List<string> Describe(BrokerSnapshot snapshot) =>
        snapshot.Queues.SelectMany(q => q.Subscriptions
            .Select(s => $"{q.Name}/{s.Name}: consumers={s.Consumers} backlog={s.Backlog} inflight={s.InFlight} delivered={s.Delivered} acked={s.Acked} nacked={s.Nacked} dead={s.DeadLettered}")
            .Prepend($"{q.Name}: depth={q.Depth} published={q.Published} unrouted={q.Unrouted} dropped={q.Dropped} dead={q.DeadLettered} subscriptions={q.Subscriptions.Count}"))
        .ToList();

    /// <summary>The durable control subscription still gets every message, and the one it held in flight settles.</summary>
    private async Task ControlStillDeliversEverythingAsync()
    {
        await _broker.PublishAsync(Control, "e", new TestEvent(4));
        var numbers = new List<int>();
        for (int i = 0; i < 3; i++)
        {
            Delivery<TestEvent> delivery = await _keeper.ReadAsync().OrHang("a control delivery");
            numbers.Add(delivery.Payload.Number);
            (await delivery.AckAsync()).Should().BeTrue();
        }

        numbers.Should().Equal(2, 3, 4);
        (await _inFlight.AckAsync()).Should().BeTrue("the delivery in flight before the bad input is still pending");
        _broker.GetSnapshot().Queue(Control).Depth.Should().Be(0, "nothing was lost");
    }
}
