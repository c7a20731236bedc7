using System.Threading.Channels;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests.Subscriptions;

/// <summary>
/// The hand-off between a publisher and a consumer: the per-consumer ring (which starts small and grows
/// to MaxInFlight while deliveries are in it) and the readers parked on it.
/// </summary>
public sealed class DeliveryRingTests : IAsyncLifetime
{
    private Broker _broker = null!;

    public Task InitializeAsync()
    {
        _broker = new Broker(new BrokerOptions { ShutdownTimeout = TimeSpan.Zero });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private async Task PublishAsync(string queue, int from, int count, CancellationToken cancellationToken = default)
    {
        for (int i = from; i < from + count; i++)
        {
            await _broker.PublishAsync(queue, "e", new TestEvent(i), cancellationToken: cancellationToken);
        }
    }

    private static List<int> ReadAvailable(Subscription<TestEvent> subscription, List<Delivery<TestEvent>>? held = null)
    {
        var numbers = new List<int>();
        while (subscription.TryRead(out Delivery<TestEvent> delivery))
        {
            numbers.Add(delivery.Payload.Number);
            held?.Add(delivery);
        }

        return numbers;
    }

    [Fact]
    [Trait("Guarantee", "3")]
    public async Task RingGrowsWhileDeliveriesWaitInIt_OrderIsKeptAcrossEveryGrowth()
    {
        // 1000 unread deliveries: the ring doubles from 16 to 1024 on the way, with deliveries in it each time.
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { MaxInFlight = 1000 });
        await PublishAsync("orders", 0, 1000);

        _broker.GetSnapshot().Queue("orders").Subscriptions[0].InFlight.Should().Be(1000);
        ReadAvailable(subscription).Should().Equal(Enumerable.Range(0, 1000));
    }

    [Fact]
    [Trait("Guarantee", "3")]
    public async Task RingWrapsAroundAndGrowsMidLap_OrderIsKept()
    {
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { MaxInFlight = 100 });
        var seen = new List<int>();
        int next = 0;

        // Read and ack a few at a time so that the read position laps the small ring many times, then let the
        // unread part grow past the ring's size so that it doubles while its contents wrap around its end.
        foreach (int batch in new[] { 5, 11, 3, 16, 9, 14, 40, 7, 90, 1, 100, 33 })
        {
            await PublishAsync("orders", next, batch);
            next += batch;
            var held = new List<Delivery<TestEvent>>();
            seen.AddRange(ReadAvailable(subscription, held));
            foreach (Delivery<TestEvent> delivery in held)
            {
                (await delivery.AckAsync()).Should().BeTrue();
            }
        }

        seen.Should().Equal(Enumerable.Range(0, next));
        _broker.GetSnapshot().Queue("orders").Depth.Should().Be(0);
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task SeveralReadersParked_OnePublishWakesThemAll_AndExactlyOneGetsTheMessage()
    {
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("orders", "#");
        Task<bool>[] waits = [subscription.WaitToReadAsync().AsTask(), subscription.WaitToReadAsync().AsTask(), subscription.WaitToReadAsync().AsTask()];
        waits.Should().OnlyContain(wait => !wait.IsCompleted, "nothing was published yet");

        await _broker.PublishAsync("orders", "e", new TestEvent(7));

        foreach (Task<bool> wait in waits)
        {
            (await wait.OrHang("a parked reader waking up")).Should().BeTrue();
        }

        ReadAvailable(subscription).Should().Equal(7);
    }

    [Fact]
    [Trait("Guarantee", "9")]
    public async Task ParkedWaitCancelled_ThrowsAndTheNextWaitsStillWork_ManyTimesOver()
    {
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("orders", "#");
        for (int round = 0; round < 100; round++)
        {
            using var cancel = new CancellationTokenSource();
            ValueTask<bool> parked = subscription.WaitToReadAsync(cancel.Token);
            parked.IsCompleted.Should().BeFalse();
            await cancel.CancelAsync();
            Func<Task> cancelled = () => parked.AsTask();
            await cancelled.Should().ThrowAsync<OperationCanceledException>();

            // The reader waits again (the reusable waiter came back) and gets the next message.
            ValueTask<Delivery<TestEvent>> read = subscription.ReadAsync();
            await _broker.PublishAsync("orders", "e", new TestEvent(round));
            Delivery<TestEvent> delivery = await read.OrHang("a read after a cancelled wait");
            delivery.Payload.Number.Should().Be(round);
            (await delivery.AckAsync()).Should().BeTrue();
        }
    }

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task SubscriptionEnds_ParkedReadersFinish()
    {
        Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("orders", "#");
        ValueTask<bool> waiting = subscription.WaitToReadAsync();
        ValueTask<Delivery<TestEvent>> reading = subscription.ReadAsync();

        await subscription.DisposeAsync();

        (await waiting.OrHang("a parked WaitToReadAsync at dispose")).Should().BeFalse();
        Func<Task> read = () => reading.AsTask();
        await read.Should().ThrowAsync<ChannelClosedException>().WithMessage("*subscription to queue 'orders' has ended*");
        (await subscription.WaitToReadAsync()).Should().BeFalse("a wait after the end completes at once");
    }

    [Fact]
    [Trait("Guarantee", "1")]
    public async Task TwoReadersOnOneConsumer_WhileAPublisherRuns_EveryMessageIsReadOnceAndInOrderPerReader()
    {
        const int Count = 20_000;
        await using Subscription<TestEvent> subscription = await _broker.SubscribeAsync<TestEvent>("orders", "#", new SubscriptionOptions { MaxInFlight = 64 });
        int read = 0;
        using var done = new CancellationTokenSource();
        var perReader = new List<int>[] { [], [] };
        Task[] readers = [.. Enumerable.Range(0, 2).Select(r => Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    Delivery<TestEvent> delivery;
                    try
                    {
                        delivery = await subscription.ReadAsync(done.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    perReader[r].Add(delivery.Payload.Number);
                    (await delivery.AckAsync()).Should().BeTrue();
                    if (Interlocked.Increment(ref read) == Count)
                    {
                        await done.CancelAsync(); // the other reader is parked, or about to be: this ends it
                    }
                }
            }
            catch
            {
                // A failed assertion ends the other reader and the publisher too (which would otherwise wait for room
                // that nobody frees), so that the test fails with this message rather than a hang.
                await done.CancelAsync();
                throw;
            }
        }))];

        // The readers first: a reader's failure is the test's message; the publisher then only reports its cancellation.
        Task publishing = PublishAsync("orders", 0, Count, done.Token);
        await Task.WhenAll(readers).OrHang("two readers draining 20 000 messages");
        await publishing.OrHang("publishing 20 000 messages while two readers drain them");

        read.Should().Be(Count);
        List<int> all = [.. perReader[0], .. perReader[1]];
        all.Order().Should().Equal(Enumerable.Range(0, Count), "each message is read exactly once"); // sorted: loose equivalency of 20 000 items is quadratic
        foreach (List<int> numbers in perReader)
        {
            numbers.Should().BeInAscendingOrder("one reader sees its share in publish order");
        }

        _broker.GetSnapshot().Queue("orders").Depth.Should().Be(0);
    }
}
