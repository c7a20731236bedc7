using FluentAssertions;
using MessageQueue.Testing.Tests.Support;
using Xunit;

namespace MessageQueue.Testing.Tests.Doubles;

/// <summary>A RecordingPublisher tests code that only publishes, including its error paths.</summary>
public sealed class RecordingPublisherTests
{
    [Fact]
    public async Task RecordsWhatTheCodeUnderTestPublished()
    {
        var publisher = new RecordingPublisher();
        var checkout = new Checkout(publisher);

        (await checkout.PlaceAsync(new Order(7, "tea"))).Should().Be("accepted");
        (await checkout.PlaceAsync(new Order(8, "coffee"))).Should().Be("accepted");

        publisher.Messages.Should().HaveCount(2);
        MessageRecord first = publisher.Messages[0];
        first.Queue.Should().Be("orders");
        first.Event.Should().Be("order.created");
        first.GetPayload<Order>().Should().Be(new Order(7, "tea"));
        first.PayloadType.Should().Be<Order>();
        first.Options.Headers.Should().Contain("source", "web");
        publisher.Messages.Select(m => m.Sequence).Should().Equal(1, 2);
        publisher.Payloads<Order>("orders", "order.created").Select(o => o.Id).Should().Equal(7, 8);
    }

    [Fact]
    public async Task Records_AreTheHarnesssMessageRecords_OnTheGivenClock_WithTheirOptions()
    {
        var clock = new ManualTimeProvider();
        var publisher = new RecordingPublisher(clock);
        var headers = new Dictionary<string, string> { ["source"] = "web" };

        await publisher.PublishAsync("orders", "order.created", new Order(1, "tea"), new PublishOptions { Headers = headers, TimeToLive = TimeSpan.FromMinutes(5) });
        clock.Advance(TimeSpan.FromSeconds(1));
        await publisher.PublishAsync("orders", "order.paid", new Order(1, "tea"));
        await publisher.PublishAsync("audit", "order.created", "placed 1");

        MessageRecords records = publisher.Messages;
        records.Select(r => r.Kind).Should().Equal(MessageRecordKind.Published, MessageRecordKind.Published, MessageRecordKind.Published);
        records.ForQueue("orders").ForEvent("order.*").Payloads<Order>().Should().Equal(new Order(1, "tea"), new Order(1, "tea"));
        records.ForEvent("order.created").Select(r => r.Queue).Should().Equal("orders", "audit");
        records[0].Time.Should().Be(ManualTimeProvider.DefaultStart);
        records[1].Time.Should().Be(ManualTimeProvider.DefaultStart.AddSeconds(1));
        records[0].Headers.Should().Equal(headers);
        records[0].Options.TimeToLive.Should().Be(TimeSpan.FromMinutes(5));
        records[1].Headers.Should().BeEmpty();
        records[2].PayloadType.Should().Be<string>();
        records[2].Sequence.Should().Be(1, "sequences count per queue");
        records[0].Subscription.Should().BeNull();
        records[0].Attempt.Should().Be(0);
        new Func<RecordingPublisher>(() => new RecordingPublisher(null!)).Should().Throw<ArgumentNullException>().Which.ParamName.Should().Be("timeProvider");
    }

    [Fact]
    public async Task NullPayload_IsRefusedAsTheBrokerRefusesIt_AndRecordsNothing()
    {
        var publisher = new RecordingPublisher();

        Func<Task> publishNull = () => publisher.PublishAsync<Order>("orders", "order.created", null!).AsTask();
        Func<Task> publishNoValue = () => publisher.PublishAsync<int?>("numbers", "counted", null).AsTask();

        (await publishNull.Should().ThrowAsync<ArgumentNullException>()).Which.ParamName.Should().Be("payload");
        (await publishNoValue.Should().ThrowAsync<ArgumentNullException>()).Which.Message.Should().Contain("publish an empty record");
        publisher.Messages.Should().BeEmpty();
        publisher.FailedCount.Should().Be(0, "a refused argument is not a publish made to fail");
        (await publisher.PublishAsync("orders", "order.created", new Order(1, "tea"))).Sequence.Should().Be(1, "the refused publish took no sequence");
    }

    [Fact]
    public async Task FailWith_QueueFull_DrivesTheCallersErrorPath()
    {
        var publisher = new RecordingPublisher();
        var checkout = new Checkout(publisher);
        publisher.FailWith(new QueueFullException("orders", "Queue 'orders' is full.", null));

        (await checkout.PlaceAsync(new Order(7, "tea"))).Should().Be("busy, try again later");
        (await checkout.PlaceAsync(new Order(8, "tea"))).Should().Be("busy, try again later");
        publisher.Messages.Should().BeEmpty("a publish made to fail records nothing");
        publisher.FailedCount.Should().Be(2);

        publisher.Succeed();
        (await checkout.PlaceAsync(new Order(9, "tea"))).Should().Be("accepted");
        publisher.Messages.Should().ContainSingle().Which.Sequence.Should().Be(1);
    }

    [Fact]
    public async Task FailNext_FailsThatManyThenRecovers()
    {
        var publisher = new RecordingPublisher();
        publisher.FailNext(new TimeoutException("the store is slow"), count: 2);

        Func<Task> publish = () => publisher.PublishAsync("orders", "order.created", new Order(1, "tea")).AsTask();
        await publish.Should().ThrowAsync<TimeoutException>();
        await publish.Should().ThrowAsync<TimeoutException>();
        await publish.Should().NotThrowAsync();
        publisher.FailedCount.Should().Be(2);
        publisher.Messages.Should().ContainSingle();
    }

    [Fact]
    public async Task FailWhen_FailsOnlyWhatTheRuleSelects()
    {
        var publisher = new RecordingPublisher();
        publisher.FailWhen(m => m.Queue == "audit" ? new QueueNotFoundException("audit", "Queue 'audit' was not declared.", null) : null);

        PublishReceipt receipt = await publisher.PublishAsync("orders", "order.created", new Order(1, "tea"), new PublishOptions { MessageId = Guid.Parse("00000000-0000-0000-0000-000000000007") });
        Func<Task> audit = () => publisher.PublishAsync("audit", "order.created", new Order(1, "tea")).AsTask();

        await audit.Should().ThrowAsync<QueueNotFoundException>();
        receipt.Should().Be(new PublishReceipt("orders", Guid.Parse("00000000-0000-0000-0000-000000000007"), 1));
        publisher.Messages.Should().ContainSingle().Which.Queue.Should().Be("orders");
    }

    [Fact]
    public async Task Clear_ForgetsMessagesAndRestartsSequences()
    {
        var publisher = new RecordingPublisher();
        await publisher.PublishAsync("orders", "order.created", new Order(1, "tea"));
        publisher.Clear();
        PublishReceipt receipt = await publisher.PublishAsync("orders", "order.created", new Order(2, "tea"));

        receipt.Sequence.Should().Be(1);
        publisher.Messages.Should().ContainSingle();
    }

    [Fact]
    public async Task Cancelled_PublishesNothing()
    {
        var publisher = new RecordingPublisher();
        Func<Task> publish = () => publisher.PublishAsync("orders", "order.created", new Order(1, "tea"), cancellationToken: new CancellationToken(canceled: true)).AsTask();
        await publish.Should().ThrowAsync<OperationCanceledException>();
        publisher.Messages.Should().BeEmpty();
    }
}
