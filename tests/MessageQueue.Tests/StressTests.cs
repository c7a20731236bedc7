using System.Collections.Concurrent;
using System.Globalization;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using MessageQueue.Testing;
using Xunit;
using Xunit.Abstractions;

namespace MessageQueue.Tests;

/// <summary>
/// Many publishers and many durable subscriptions with competing consumers that ack, nack, hold
/// messages and detach at random. The run ends in exact accounting: every message reaches every
/// matching subscription and is acked there exactly once. Choices come from a seeded random
/// generator (set MQ_STRESS_SEED to replay one); thread interleavings differ from run to run.
/// </summary>
public sealed class StressTests(ITestOutputHelper output)
{
    private const int Publishers = 4;
    private const int MessagesPerPublisher = 2500;
    private const int WorkersPerSubscription = 2;
    private static readonly string[] Events = ["a.x", "a.y", "b.x", "b.y"];

    private sealed class Tracked(string name, string[] filters, Func<string, bool> matches)
    {
        public string Name { get; } = name;

        public string[] Filters { get; } = filters;

        public Func<string, bool> Matches { get; } = matches;

        public ConcurrentDictionary<Guid, byte> Expected { get; } = new();

        public ConcurrentDictionary<Guid, int> Acked { get; } = new();
    }

    /// <summary>The seed for this run: MQ_STRESS_SEED if set, else <paramref name="fallback"/>. Printed, to replay a failure.</summary>
    private int Seed(int fallback)
    {
        int seed = Environment.GetEnvironmentVariable("MQ_STRESS_SEED") is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;
        output.WriteLine($"stress seed {seed} (replay with MQ_STRESS_SEED={seed})");
        return seed;
    }

    /// <summary>Four durable subscriptions whose filters overlap, each with the predicate that says what it must get.</summary>
    private static Tracked[] NewSubscriptions() =>
    [
        new("all", ["#"], _ => true),
        new("a-star", ["a.*"], e => e.StartsWith("a.", StringComparison.Ordinal)),
        new("star-x", ["*.x"], e => e.EndsWith(".x", StringComparison.Ordinal)),
        new("pair", ["b.y", "a.x"], e => e is "b.y" or "a.x"),
    ];

    /// <summary>
    /// The next delivery. A worker that holds deliveries never blocks: near the end nothing new arrives, and what
    /// it holds would then never be settled. Null when it holds some and nothing is there.
    /// </summary>
    private static async ValueTask<Delivery<TestEvent>?> NextAsync(Subscription<TestEvent> consumer, bool holding, CancellationToken cancellationToken)
    {
        if (!holding)
        {
            return await consumer.ReadAsync(cancellationToken);
        }

        return consumer.TryRead(out Delivery<TestEvent> delivery) ? delivery : null;
    }

    /// <summary>
    /// A worker whose assertion fails fails the run's <paramref name="done"/> signal with its exception, so that the test
    /// ends at once with that message instead of waiting out the hang guard for acks that worker will never make.
    /// </summary>
    private static async Task FailFastAsync(Task worker, TaskCompletionSource done)
    {
        try
        {
            await worker;
        }
        catch (Exception error)
        {
            done.TrySetException(error);
            throw;
        }
    }

    /// <summary>
    /// Waits for the publishers, or ends at once with a worker's failure (see <see cref="FailFastAsync"/>): without the
    /// workers nothing frees room in the queue, and the publishers would wait for it until the hang guard.
    /// </summary>
    private static async Task PublishersOrFailureAsync(Task publishers, Task done, string what)
    {
        Task first = await Task.WhenAny(publishers, done).OrHang(what);
        await first;
        if (first != publishers)
        {
            await publishers.OrHang(what);
        }
    }

    [Fact]
    [Trait("Guarantee", "1")]
    [Trait("Guarantee", "2")]
    [Trait("Guarantee", "5")]
    public async Task PublishersAndDetachingConsumers_RandomSettlement_EveryMessageAckedExactlyOncePerMatchingSubscription()
    {
        int seed = Seed(20261121);

        await using var broker = new Broker();
        broker.DeclareQueue<TestEvent>("stress", new QueueOptions { MaxMessages = 256, PublishTimeout = TestWait.HangGuard });
        Tracked[] subscriptions = NewSubscriptions();

        // Create the durable subscriptions before anything is published, so that each gets everything.
        foreach (Tracked tracked in subscriptions)
        {
            await (await broker.SubscribeAsync<TestEvent>("stress", tracked.Filters, new SubscriptionOptions { Name = tracked.Name })).DisposeAsync();
        }

        using var stop = new CancellationTokenSource();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int publishersDone = 0;
        long nacks = 0, reattaches = 0, staleSettles = 0, redeliveries = 0, acksAfterDetach = 0;

        void Dump()
        {
            QueueSnapshot q = broker.GetSnapshot().Queue("stress");
            output.WriteLine($"depth {q.Depth} published {q.Published} waiting publishers {q.WaitingPublishers}");
            foreach (SubscriptionSnapshot sub in q.Subscriptions)
            {
                output.WriteLine($"{sub.Name}: consumers {sub.Consumers} backlog {sub.Backlog} in flight {sub.InFlight} delivered {sub.Delivered} acked {sub.Acked} nacked {sub.Nacked}");
            }

            foreach (Tracked t in subscriptions)
            {
                output.WriteLine($"{t.Name}: expected {t.Expected.Count} acked {t.Acked.Count} acked twice {t.Acked.Count(p => p.Value > 1)}");
            }
        }

        void CheckDone()
        {
            if (Volatile.Read(ref publishersDone) == 1 && subscriptions.All(s => s.Acked.Count == s.Expected.Count))
            {
                done.TrySetResult();
            }
        }

        async Task WorkerAsync(Tracked tracked, int worker)
        {
            var random = new Random(HashCode.Combine(seed, tracked.Name, worker));
            while (!stop.IsCancellationRequested)
            {
                BrokerClient client = broker.Connect($"{tracked.Name}-{worker}");
                int maxInFlight = random.Next(1, 9);
                // No delivery limit here: this run accounts for acks only (dead letters are covered elsewhere).
                Subscription<TestEvent> consumer = await client.SubscribeAsync<TestEvent>(
                    "stress", tracked.Filters, new SubscriptionOptions { Name = tracked.Name, MaxInFlight = maxInFlight, MaxDeliveries = int.MaxValue });
                Interlocked.Increment(ref reattaches);
                var held = new List<Delivery<TestEvent>>();
                try
                {
                    int batch = random.Next(1, 60);
                    for (int i = 0; i < batch; i++)
                    {
                        if (await NextAsync(consumer, holding: held.Count > 0, stop.Token) is not { } delivery)
                        {
                            break;
                        }

                        if (delivery.Attempt > 1)
                        {
                            Interlocked.Increment(ref redeliveries);
                        }

                        int roll = random.Next(100);
                        if (roll < 70)
                        {
                            await AckAsync(tracked, delivery);
                        }
                        else if (roll < 85)
                        {
                            (await delivery.NackAsync(TimeSpan.Zero)).Should().BeTrue();
                            Interlocked.Increment(ref nacks);
                        }
                        else if (held.Count + 1 < maxInFlight)
                        {
                            // Hold it unsettled, leaving credit for the next read: a consumer that
                            // holds MaxInFlight deliveries gets nothing more (guarantee 4).
                            held.Add(delivery);
                        }
                        else
                        {
                            await AckAsync(tracked, delivery);
                        }
                    }

                    if (random.Next(2) == 0)
                    {
                        foreach (Delivery<TestEvent> delivery in held)
                        {
                            await AckAsync(tracked, delivery);
                        }

                        held.Clear();
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    // Finished: leave what is held, as a crashing consumer would.
                }
                finally
                {
                    // Detach with deliveries still held: they must come back, and acking them now must fail.
                    if (random.Next(2) == 0)
                    {
                        await consumer.DisposeAsync();
                    }
                    else
                    {
                        await client.DisposeAsync();
                    }

                    await client.DisposeAsync();
                    foreach (Delivery<TestEvent> delivery in held)
                    {
                        if (!await delivery.AckAsync())
                        {
                            Interlocked.Increment(ref staleSettles);
                        }
                        else
                        {
                            Interlocked.Increment(ref acksAfterDetach);
                        }
                    }
                }
            }
        }

        async Task AckAsync(Tracked tracked, Delivery<TestEvent> delivery)
        {
            if (await delivery.AckAsync())
            {
                tracked.Acked.AddOrUpdate(delivery.Message.Id, 1, (_, count) => count + 1);
                CheckDone();
            }
            else
            {
                Interlocked.Increment(ref staleSettles);
            }
        }

        async Task PublisherAsync(int publisher)
        {
            var random = new Random(HashCode.Combine(seed, "publisher", publisher));
            await using BrokerClient client = broker.Connect($"publisher-{publisher}");
            for (int i = 0; i < MessagesPerPublisher; i++)
            {
                string eventName = Events[random.Next(Events.Length)];
                PublishReceipt receipt = await client.PublishAsync("stress", eventName, new TestEvent(publisher * MessagesPerPublisher + i, eventName));
                foreach (Tracked tracked in subscriptions.Where(s => s.Matches(eventName)))
                {
                    tracked.Expected.TryAdd(receipt.MessageId, 0);
                }
            }
        }

        List<Task> workers = [.. subscriptions.SelectMany(s => Enumerable.Range(0, WorkersPerSubscription).Select(w => Task.Run(() => FailFastAsync(WorkerAsync(s, w), done))))];
        try
        {
            try
            {
                await PublishersOrFailureAsync(Task.WhenAll(Enumerable.Range(0, Publishers).Select(p => Task.Run(() => PublisherAsync(p)))), done.Task, $"the publishers (seed {seed})");
            }
            catch (TimeoutException)
            {
                Dump();
                throw;
            }
            Volatile.Write(ref publishersDone, 1);
            CheckDone();

            try
            {
                await done.Task.OrHang($"every subscription to ack everything it matched (seed {seed})");
            }
            catch (TimeoutException)
            {
                Dump();
                throw;
            }
        }
        finally
        {
            // On every path: workers that hold deliveries would otherwise keep the broker's shutdown waiting.
            await stop.CancelAsync();
        }

        await Task.WhenAll(workers).OrHang($"the workers to stop (seed {seed})");

        output.WriteLine($"nacks {nacks}, consumer attaches {reattaches}, stale settles {staleSettles}, redeliveries {redeliveries}");
        foreach (Tracked tracked in subscriptions)
        {
            tracked.Acked.Keys.Should().BeEquivalentTo(tracked.Expected.Keys, $"subscription '{tracked.Name}' acks exactly what it matched (seed {seed})");
            tracked.Acked.Values.Should().AllSatisfy(count => count.Should().Be(1, $"nothing is acked twice in '{tracked.Name}' (seed {seed})"));
        }

        subscriptions.Sum(s => s.Expected.Count).Should().BeGreaterThan(Publishers * MessagesPerPublisher, "fan-out means more deliveries than messages");
        Interlocked.Read(ref acksAfterDetach).Should().Be(0, $"an ack after the consumer detached never counts (seed {seed})");
        nacks.Should().BePositive("the run must exercise nacks");
        staleSettles.Should().BePositive("the run must exercise acks after a detach");
        redeliveries.Should().BePositive("the run must exercise redelivery");

        QueueSnapshot queue = broker.GetSnapshot().Queue("stress");
        queue.Depth.Should().Be(0);
        queue.Published.Should().Be(Publishers * MessagesPerPublisher);
        foreach (SubscriptionSnapshot subscription in queue.Subscriptions)
        {
            subscription.Backlog.Should().Be(0);
            subscription.InFlight.Should().Be(0);
            subscription.Acked.Should().Be(subscriptions.Single(s => s.Name == subscription.Name).Expected.Count);
        }
    }

    [Fact]
    [Trait("Guarantee", "1")]
    [Trait("Guarantee", "2")]
    [Trait("Guarantee", "6")]
    public async Task PublishersAndCompetingConsumers_AckNackRejectTimeoutDetach_EveryMessageAckedOnceOrDeadLetteredOnce()
    {
        int seed = Seed(20261122);
        const int messagesPerPublisher = 2500;
        const int maxDeliveries = 4;

        // A manual clock that a driver task moves on by half a second at a time for the whole run, so that ack
        // deadlines and nack delays fire while publishers and consumers work on other threads.
        var clock = new ManualTimeProvider();
        await using var broker = new Broker(new BrokerOptions { TimeProvider = clock, ShutdownTimeout = TimeSpan.Zero });
        broker.DeclareQueue<TestEvent>("stress", new QueueOptions { MaxMessages = 256, PublishTimeout = Timeout.InfiniteTimeSpan });
        var drops = new ConcurrentQueue<MessageDroppedEventArgs>();
        broker.MessageDropped += (_, e) => drops.Enqueue(e);
        Tracked[] subscriptions = NewSubscriptions();

        SubscriptionOptions Options(Tracked tracked, int maxInFlight) => new()
        {
            Name = tracked.Name,
            MaxInFlight = maxInFlight,
            MaxDeliveries = maxDeliveries,
            AckTimeout = TimeSpan.FromSeconds(30),
            RedeliveryDelays = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2)],
        };

        foreach (Tracked tracked in subscriptions)
        {
            await (await broker.SubscribeAsync<TestEvent>("stress", tracked.Filters, Options(tracked, 1))).DisposeAsync();
        }

        // Dead letters, read as they come with room for all of them in flight, so that the dead-letter
        // queue's own bound never evicts one (the drop log below would show it).
        var deadLettered = new ConcurrentDictionary<(string Subscription, Guid Id), int>();
        var reasons = new ConcurrentDictionary<string, int>();
        Subscription<TestEvent> deadLetterReader = await broker.SubscribeAsync<TestEvent>("stress.$dlq", "#", new SubscriptionOptions { MaxInFlight = 100_000 });

        using var stop = new CancellationTokenSource();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        long nacks = 0, rejects = 0, abandoned = 0, extends = 0, staleSettles = 0, redeliveries = 0, lastAttempts = 0;

        int DeadLetteredFor(Tracked tracked) => deadLettered.Keys.Count(k => k.Subscription == tracked.Name);

        // Settlements seen (successful acks plus dead letters read); the exact per-message check comes at the end.
        long settledTotal = 0, expectedTotal = long.MaxValue;

        void CheckDone()
        {
            if (Interlocked.Read(ref settledTotal) >= Interlocked.Read(ref expectedTotal))
            {
                done.TrySetResult();
            }
        }

        void Dump()
        {
            QueueSnapshot q = broker.GetSnapshot().Queue("stress");
            output.WriteLine($"clock {clock.GetUtcNow():O} depth {q.Depth} published {q.Published} waiting publishers {q.WaitingPublishers} dead-lettered {q.DeadLettered}");
            foreach (SubscriptionSnapshot sub in q.Subscriptions)
            {
                output.WriteLine($"{sub.Name}: consumers {sub.Consumers} backlog {sub.Backlog} in flight {sub.InFlight} delivered {sub.Delivered} acked {sub.Acked} nacked {sub.Nacked} timed out {sub.TimedOut} dead-lettered {sub.DeadLettered}");
            }

            foreach (Tracked t in subscriptions)
            {
                output.WriteLine($"{t.Name}: expected {t.Expected.Count} acked {t.Acked.Count} dead-lettered {DeadLetteredFor(t)}");
            }
        }

        async Task DriveClockAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                clock.Advance(TimeSpan.FromMilliseconds(500));
                await Task.Yield();
            }
        }

        async Task ReadDeadLettersAsync()
        {
            try
            {
                while (true)
                {
                    Delivery<TestEvent> deadLetter = await deadLetterReader.ReadAsync(stop.Token);
                    string source = deadLetter.Message.Headers[MessageHeaders.SourceSubscription];
                    deadLettered.AddOrUpdate((source, deadLetter.Message.Id), 1, (_, count) => count + 1);
                    reasons.AddOrUpdate(deadLetter.Message.Headers[MessageHeaders.DeadLetterReason], 1, (_, count) => count + 1);
                    await deadLetter.AckAsync();
                    Interlocked.Increment(ref settledTotal);
                    CheckDone();
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
        }

        async Task SettleAsync(Tracked tracked, Delivery<TestEvent> delivery)
        {
            if (await delivery.AckAsync())
            {
                tracked.Acked.AddOrUpdate(delivery.Message.Id, 1, (_, count) => count + 1);
                Interlocked.Increment(ref settledTotal);
                CheckDone();
            }
            else
            {
                Interlocked.Increment(ref staleSettles); // it passed its deadline, or its consumer left
            }
        }

        async Task WorkerAsync(Tracked tracked, int worker)
        {
            var random = new Random(HashCode.Combine(seed, tracked.Name, worker, "dead letters"));
            while (!stop.IsCancellationRequested)
            {
                await using BrokerClient client = broker.Connect($"{tracked.Name}-{worker}");
                int maxInFlight = random.Next(2, 9);
                Subscription<TestEvent> consumer = await client.SubscribeAsync<TestEvent>("stress", tracked.Filters, Options(tracked, maxInFlight));
                var held = new List<Delivery<TestEvent>>();
                int forgotten = 0;
                try
                {
                    int batch = random.Next(1, 60);
                    for (int i = 0; i < batch; i++)
                    {
                        if (await NextAsync(consumer, holding: held.Count > 0, stop.Token) is not { } delivery)
                        {
                            break;
                        }

                        if (delivery.Attempt > 1)
                        {
                            Interlocked.Increment(ref redeliveries);
                        }

                        if (delivery.IsLastAttempt)
                        {
                            Interlocked.Increment(ref lastAttempts);
                        }

                        int roll = random.Next(100);
                        if (roll < 55)
                        {
                            await SettleAsync(tracked, delivery);
                        }
                        else if (roll < 67)
                        {
                            TimeSpan? delay = random.Next(2) == 0 ? null : TimeSpan.Zero;
                            if (await (delay is null ? delivery.NackAsync() : delivery.NackAsync(delay.Value)))
                            {
                                Interlocked.Increment(ref nacks);
                            }
                        }
                        else if (roll < 73)
                        {
                            if (await delivery.RejectAsync("stress"))
                            {
                                Interlocked.Increment(ref rejects);
                            }
                        }
                        else if (roll < 80 && forgotten + held.Count + 1 < maxInFlight)
                        {
                            // Forget it, as a hung handler would: only its ack deadline brings it back.
                            forgotten++;
                            Interlocked.Increment(ref abandoned);
                        }
                        else if (held.Count + forgotten + 1 < maxInFlight)
                        {
                            held.Add(delivery);
                        }
                        else
                        {
                            await SettleAsync(tracked, delivery);
                        }
                    }

                    foreach (Delivery<TestEvent> delivery in held)
                    {
                        if (random.Next(3) == 0 && await delivery.ExtendAsync())
                        {
                            Interlocked.Increment(ref extends);
                        }

                        if (random.Next(2) == 0)
                        {
                            await SettleAsync(tracked, delivery);
                        }
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                }
                finally
                {
                    // Leave, sometimes holding deliveries: they go back to the other worker at once.
                    await consumer.DisposeAsync();
                    foreach (Delivery<TestEvent> delivery in held)
                    {
                        (await delivery.AckAsync()).Should().BeFalse("an ack after its consumer left never counts");
                    }
                }
            }
        }

        async Task PublisherAsync(int publisher)
        {
            var random = new Random(HashCode.Combine(seed, "publisher", publisher));
            for (int i = 0; i < messagesPerPublisher; i++)
            {
                string eventName = Events[random.Next(Events.Length)];
                PublishReceipt receipt = await broker.PublishAsync("stress", eventName, new TestEvent(publisher * messagesPerPublisher + i, eventName));
                foreach (Tracked tracked in subscriptions)
                {
                    if (tracked.Matches(eventName))
                    {
                        tracked.Expected.TryAdd(receipt.MessageId, 0);
                    }
                }
            }
        }

        var watch = System.Diagnostics.Stopwatch.StartNew();
        DateTimeOffset start = clock.GetUtcNow();
        Task driver = Task.Run(DriveClockAsync);
        Task deadLetterTask = Task.Run(ReadDeadLettersAsync);
        List<Task> workers = [.. subscriptions.SelectMany(s => Enumerable.Range(0, WorkersPerSubscription).Select(w => Task.Run(() => FailFastAsync(WorkerAsync(s, w), done))))];
        try
        {
            await PublishersOrFailureAsync(Task.WhenAll(Enumerable.Range(0, Publishers).Select(p => Task.Run(() => PublisherAsync(p)))), done.Task, $"the publishers (seed {seed})");
            output.WriteLine($"publishers done after {watch.Elapsed.TotalSeconds:0.0} s, clock at {clock.GetUtcNow() - start}");
            Interlocked.Exchange(ref expectedTotal, subscriptions.Sum(t => (long)t.Expected.Count));
            CheckDone();
            await done.Task.OrHang($"every subscription to ack or dead-letter everything it matched (seed {seed})");
        }
        catch (TimeoutException)
        {
            Dump();
            throw;
        }
        finally
        {
            await stop.CancelAsync();
        }

        await Task.WhenAll([driver, deadLetterTask, .. workers]).OrHang($"the workers to stop (seed {seed})");
        await deadLetterReader.DisposeAsync();

        output.WriteLine($"all settled after {watch.Elapsed.TotalSeconds:0.0} s, clock at {clock.GetUtcNow() - start}");
        output.WriteLine($"nacks {nacks}, rejects {rejects}, forgotten {abandoned}, extends {extends}, stale settles {staleSettles}, redeliveries {redeliveries}, last attempts {lastAttempts}");
        output.WriteLine($"dead letters by reason: {string.Join(", ", reasons.Select(r => $"{r.Key} {r.Value}"))}");
        QueueSnapshot queue = broker.GetSnapshot().Queue("stress");
        foreach (Tracked tracked in subscriptions)
        {
            var dead = deadLettered.Where(d => d.Key.Subscription == tracked.Name).ToDictionary(d => d.Key.Id, d => d.Value);
            var acked = new HashSet<Guid>(tracked.Acked.Keys);
            acked.Where(dead.ContainsKey).Should().BeEmpty($"in '{tracked.Name}' nothing is both acked and dead-lettered (seed {seed})");
            var settled = new HashSet<Guid>(acked.Concat(dead.Keys));
            tracked.Expected.Keys.Where(id => !settled.Contains(id)).Should().BeEmpty($"'{tracked.Name}' acked or dead-lettered everything it matched (seed {seed})");
            settled.Where(id => !tracked.Expected.ContainsKey(id)).Should().BeEmpty($"'{tracked.Name}' settled only what it matched (seed {seed})");
            tracked.Acked.Values.Should().AllSatisfy(count => count.Should().Be(1, $"nothing is acked twice in '{tracked.Name}' (seed {seed})"));
            dead.Values.Should().AllSatisfy(count => count.Should().Be(1, $"nothing is dead-lettered twice from '{tracked.Name}' (seed {seed})"));

            SubscriptionSnapshot state = queue.Subscription(tracked.Name);
            (state.Acked, state.DeadLettered, state.Backlog, state.InFlight).Should().Be((tracked.Acked.Count, dead.Count, 0, 0), $"the snapshot of '{tracked.Name}' agrees (seed {seed})");
        }

        reasons.Keys.Should().BeSubsetOf([DeadLetterReasons.Rejected, DeadLetterReasons.MaxDeliveries]);
        drops.Should().OnlyContain(
            d => d.Queue == "stress.$dlq" && d.Subscription == null && d.Reason == DropReason.RetentionLimit,
            "nothing here drops by policy; the dead-letter queue's log forgets its oldest dead letters past its bound, but its reader already holds them");
        (queue.Depth, queue.Published, queue.DeadLettered).Should().Be((0, Publishers * messagesPerPublisher, deadLettered.Count));
        (nacks, rejects, abandoned, extends, redeliveries, lastAttempts).Should().Match<(long, long, long, long, long, long)>(
            counts => counts.Item1 > 0 && counts.Item2 > 0 && counts.Item3 > 0 && counts.Item4 > 0 && counts.Item5 > 0 && counts.Item6 > 0,
            "the run must exercise nacks, rejects, forgotten deliveries, extensions, redeliveries and last attempts");
        queue.Subscriptions.Sum(s => s.TimedOut).Should().BePositive("the run must exercise ack deadlines");
        reasons.GetValueOrDefault(DeadLetterReasons.MaxDeliveries).Should().BePositive("the run must exercise MaxDeliveries");
    }

    [Fact]
    [Trait("Guarantee", "3")]
    public async Task ConcurrentPublishersOverlappingRoutes_EachSubscriptionSeesSequencesInOrder()
    {
        // Publishers lock only the subscriptions their event routes to. Routes overlap here, so this
        // shows that per-subscription order holds without a queue-wide lock.
        await using var broker = new Broker();
        broker.DeclareQueue<TestEvent>("order", new QueueOptions { MaxMessages = 128 });
        string[][] filters = [["a.*"], ["*.x"], ["#"], ["b.y", "a.x"]];
        var subscriptions = new List<Subscription<TestEvent>>();
        foreach (string[] f in filters)
        {
            subscriptions.Add(await broker.SubscribeAsync<TestEvent>("order", f, new SubscriptionOptions { MaxInFlight = 32 }));
        }

        // Publishers run on dedicated threads and publish synchronously while there is room, so that
        // they really overlap on two cores; the thread pool would serialize them more often.
        Task publishers = Task.WhenAll(Enumerable.Range(0, Publishers).Select(p => Task.Factory.StartNew(
            () =>
            {
                for (int i = 0; i < MessagesPerPublisher; i++)
                {
                    string eventName = Events[(i + p) % Events.Length];
                    var payload = new TestEvent(p * MessagesPerPublisher + i, eventName);
                    if (!broker.TryPublish("order", eventName, payload, out _))
                    {
                        broker.PublishAsync("order", eventName, payload).AsTask().GetAwaiter().GetResult();
                    }
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default)));

        async Task<(int Count, int Violations)> ConsumeAsync(Subscription<TestEvent> subscription, Func<string, bool> matches)
        {
            int expectedCount = Enumerable.Range(0, Publishers)
                .Sum(p => Enumerable.Range(0, MessagesPerPublisher).Count(i => matches(Events[(i + p) % Events.Length])));
            long lastSequence = 0;
            var lastPerPublisher = new int[Publishers];
            Array.Fill(lastPerPublisher, -1);
            int violations = 0;
            for (int n = 0; n < expectedCount; n++)
            {
                Delivery<TestEvent> delivery = await subscription.ReadAsync().OrHang("an ordered delivery");
                int publisher = delivery.Payload.Number / MessagesPerPublisher;
                violations += delivery.Message.Sequence > lastSequence ? 0 : 1;
                violations += delivery.Payload.Number > lastPerPublisher[publisher] ? 0 : 1;
                lastSequence = delivery.Message.Sequence;
                lastPerPublisher[publisher] = delivery.Payload.Number;
                await delivery.AckAsync();
            }

            return (expectedCount, violations);
        }

        Func<string, bool>[] matchers =
        [
            e => e.StartsWith("a.", StringComparison.Ordinal),
            e => e.EndsWith(".x", StringComparison.Ordinal),
            _ => true,
            e => e is "b.y" or "a.x",
        ];
        (int Count, int Violations)[] results = await Task.WhenAll(subscriptions.Select((s, i) => Task.Run(() => ConsumeAsync(s, matchers[i]))));
        await publishers.OrHang("the publishers");

        results.Should().AllSatisfy(r => r.Violations.Should().Be(0, "every subscription sees increasing sequences and each publisher's order"));
        results[2].Count.Should().Be(Publishers * MessagesPerPublisher);
        broker.GetSnapshot().Queue("order").Depth.Should().Be(0);
    }
}
