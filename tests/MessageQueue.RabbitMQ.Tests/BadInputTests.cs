using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.RabbitMQ.Tests;

/// <summary>
/// The catalogue of bad input for the RabbitMQ transport: each call fails with an exception that names the problem
/// and what to do, creates nothing, and the transport keeps working.
/// </summary>
public sealed class BadInputTests
{
    public static TheoryData<string, Func<RabbitMqTransport, string, Task>, Type, string> Cases() => new()
    {
        { "AckTimeout", (t, q) => t.SubscribeAsync<TestEvent>(q, ["#"], new SubscriptionOptions { AckTimeout = TimeSpan.FromSeconds(5) }).AsTask(), typeof(NotSupportedException), "AckTimeout" },
        { "StartAt", (t, q) => t.SubscribeAsync<TestEvent>(q, ["#"], new SubscriptionOptions { StartAt = StartPosition.All }).AsTask(), typeof(NotSupportedException), "StartAt" },
        { "MaxBacklog", (t, q) => t.SubscribeAsync<TestEvent>(q, ["#"], new SubscriptionOptions { Name = "b", MaxBacklog = 10 }).AsTask(), typeof(NotSupportedException), "MaxBacklog" },
        { "TakeOver", (t, q) => t.SubscribeAsync<TestEvent>(q, ["#"], new SubscriptionOptions { Name = "x", Exclusive = ExclusiveMode.TakeOver }).AsTask(), typeof(NotSupportedException), "TakeOver" },
        { "nack delay over 15 minutes", (t, q) => t.SubscribeAsync<TestEvent>(q, ["#"], new SubscriptionOptions { RedeliveryDelays = [TimeSpan.FromHours(1)] }).AsTask(), typeof(NotSupportedException), "RedeliveryDelays" },
        { "exclusive without a name", (t, q) => t.SubscribeAsync<TestEvent>(q, ["#"], new SubscriptionOptions { Exclusive = ExclusiveMode.Reject }).AsTask(), typeof(ArgumentException), "SubscriptionOptions.Name" },
        { "no filters", (t, q) => t.SubscribeAsync<TestEvent>(q, []).AsTask(), typeof(ArgumentException), "at least one filter" },
        { "bad filter", (t, q) => t.SubscribeAsync<TestEvent>(q, ["a..b"]).AsTask(), typeof(ArgumentException), "filters" },
        { "bad queue name", (t, _) => t.PublishAsync("bad name", "e", new TestEvent(1)).AsTask(), typeof(ArgumentException), "queue" },
        { "bad event", (t, q) => t.PublishAsync(q, "a.*", new TestEvent(1)).AsTask(), typeof(ArgumentException), "eventName" },
        { "delayed delivery", (t, q) => t.PublishAsync(q, "e", new TestEvent(1), new PublishOptions { DeliverAfter = TimeSpan.FromSeconds(1) }).AsTask(), typeof(NotSupportedException), "DeliverAfter" },
        { "null payload", (t, q) => t.PublishAsync<TestEvent>(q, "e", null!).AsTask(), typeof(ArgumentNullException), "publish an empty record" },
        { "nullable value payload without a value", (t, q) => t.PublishAsync<int?>(q, "e", null).AsTask(), typeof(ArgumentNullException), "publish an empty record" },
        { "negative TTL", (t, q) => t.PublishAsync(q, "e", new TestEvent(1), new PublishOptions { TimeToLive = TimeSpan.FromSeconds(-1) }).AsTask(), typeof(ArgumentOutOfRangeException), "TimeToLive" },
    };

    [RabbitMqTheory]
    [MemberData(nameof(Cases))]
    public async Task BadInput_ThrowsNamingTheProblem_AndTheTransportKeepsWorking(string name, Func<RabbitMqTransport, string, Task> call, Type expected, string named)
    {
        await using RabbitMqTransport transport = await RabbitMqTransport.ConnectAsync(RabbitMqServer.Options());
        string queue = "bad-" + Guid.NewGuid().ToString("N");
        await transport.DeclareQueueAsync(queue);

        Exception error = (await FluentActions.Awaiting(() => call(transport, queue)).Should().ThrowAsync<Exception>()).Which;
        error.Should().BeAssignableTo(expected, name);
        error.Message.Should().Contain(named);

        await using Subscription<TestEvent> subscription = await transport.SubscribeAsync<TestEvent>(queue, ["#"]);
        await transport.PublishAsync(queue, "after", new TestEvent(7));
        (await subscription.ReadAsync().OrHang("a message after the bad call")).Payload.Number.Should().Be(7, "nothing stray was published");
    }

    [RabbitMqFact]
    public async Task APayloadThatIsNotTheSubscribersType_IsDeadLettered_WithTheHeadersEveryDeadLetterCarries()
    {
        await using RabbitMqTransport transport = await RabbitMqTransport.ConnectAsync(RabbitMqServer.Options());
        string queue = "wrong-type-" + Guid.NewGuid().ToString("N");
        await using Subscription<TestEvent> typed = await transport.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { Name = "typed" });
        await using Subscription<string> deadLetters = await transport.SubscribeAsync<string>(Broker.GetDeadLetterQueueName(queue), ["#"]);

        PublishReceipt receipt = await transport.PublishAsync(queue, "created", "not an object");

        Delivery<string> deadLetter = await deadLetters.ReadAsync().OrHang("the unreadable message in the dead-letter queue");
        deadLetter.Payload.Should().Be("not an object", "the body goes to the dead-letter queue as it was");
        deadLetter.Message.Headers.Should().Contain(MessageHeaders.DeadLetterReason, DeadLetterReasons.Rejected)
            .And.Contain(MessageHeaders.SourceQueue, queue)
            .And.Contain(MessageHeaders.SourceSubscription, "typed")
            .And.Contain(MessageHeaders.SourceSequence, receipt.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .And.Contain(MessageHeaders.Attempts, "1")
            .And.ContainKey(MessageHeaders.DeadLetteredAt);
        deadLetter.Message.Headers[MessageHeaders.DeadLetterDetail].Should().Contain("is not a TestEvent");
        deadLetter.Message.Sequence.Should().Be(receipt.Sequence);
        await deadLetter.AckAsync();
        typed.TryRead(out _).Should().BeFalse("nothing was delivered as something it is not");
    }

    public static TheoryData<string, Action<RabbitMqOptions>, string> BadOptions() => new()
    {
        { "not an AMQP URI", o => o.ConnectionString = "http://localhost", "ConnectionString" },
        { "empty client name", o => o.ClientName = "", "ClientName" },
        { "zero publish timeout", o => o.PublishTimeout = TimeSpan.Zero, "PublishTimeout" },
        { "zero connect timeout", o => o.ConnectTimeout = TimeSpan.Zero, "ConnectTimeout" },
        { "no dead letters kept", o => o.MaxDeadLetters = 0, "MaxDeadLetters" },
        { "negative reconnect delay", o => o.ReconnectDelays = [TimeSpan.FromSeconds(-1)], "ReconnectDelays" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadOptions_AreRefusedBeforeConnecting(string name, Action<RabbitMqOptions> configure, string named)
    {
        var options = new RabbitMqOptions();
        configure(options);
        FluentActions.Invoking(() => new RabbitMqTransport(options)).Should().Throw<ArgumentException>(name).Which.Message.Should().Contain(named);
    }
}
