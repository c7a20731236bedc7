using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>
/// The observer the test harness records through is told of a step after the broker's state shows it: a harness that
/// wakes a waiting test on that call must find the snapshot already agreeing.
/// </summary>
public sealed class ObserverTests
{
    /// <summary>Records the queue's depth each time a subscription lets go of a message; ignores the other steps.</summary>
    private sealed class DepthAtRelease(Func<int> depth) : BrokerObserver
    {
        public List<int> Depths { get; } = [];

        public override void Released(string queue, Guid id) => Depths.Add(depth());

        public override void Published(string queue, bool deadLetterQueue, Guid id, long sequence, string eventName, object? payload, Type payloadType, IReadOnlyDictionary<string, string> headers, int subscriptions)
        {
        }

        public override void Referenced(int count)
        {
        }

        public override void Scheduled(int delta)
        {
        }

        public override void Parked(string queue, string? subscription, SubscriptionKey subscriptionKey, int delta)
        {
        }

        public override void Delivered(string queue, string? subscription, SubscriptionKey subscriptionKey, Guid id, long sequence, string eventName, object? payload, Type payloadType, int attempt)
        {
        }

        public override void Settled(ObservedSettlement kind, string queue, string? subscription, SubscriptionKey? subscriptionKey, Guid id, long sequence, string eventName, object? payload, Type payloadType, int attempt, TimeSpan? delay, string? reason)
        {
        }
    }

    [Fact]
    public async Task Released_IsToldAfterTheQueueFreedTheMessagesRoom()
    {
        Broker? broker = null;
        var observer = new DepthAtRelease(() => broker!.GetSnapshot().Queue("orders").Depth);
        await using (broker = new Broker(new BrokerOptions { Observer = observer }))
        {
            await using Subscription<TestEvent> billing = await broker.SubscribeAsync<TestEvent>("orders", "#");
            await using Subscription<TestEvent> shipping = await broker.SubscribeAsync<TestEvent>("orders", "#");
            await broker.PublishAsync("orders", "created", new TestEvent(1));

            (await (await billing.ReadAsync().OrHang("billing's delivery")).AckAsync()).Should().BeTrue();
            (await (await shipping.ReadAsync().OrHang("shipping's delivery")).AckAsync()).Should().BeTrue();

            observer.Depths.Should().Equal([1, 0], "the message holds its room until the last subscription lets go, and the observer hears of each release after it");
        }
    }
}
