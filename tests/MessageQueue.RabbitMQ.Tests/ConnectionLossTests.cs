using System.Collections.Concurrent;
using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.RabbitMQ.Tests;

/// <summary>RabbitMQ stops and starts again (by PID) in the middle of a stream.</summary>
[Collection(nameof(ServerRestarts))]
public sealed class ConnectionLossTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [RabbitMqRestartFact]
    [Trait("Guarantee", "2")]
    public async Task ServerRestartMidStream_DurableConsumerResumes_AndEveryConfirmedMessageArrives()
    {
        await RabbitMqServer.SettledAsync();
        RabbitMqOptions options = RabbitMqServer.Options("restart-test");
        options.ReconnectDelays = [TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500)];
        await using RabbitMqTransport transport = await RabbitMqTransport.ConnectAsync(options);
        var lost = new TaskCompletionSource<RabbitMqConnectionEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        var back = new TaskCompletionSource<RabbitMqConnectionEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        transport.ConnectionLost += (_, e) => lost.TrySetResult(e);
        transport.Reconnected += (_, e) => back.TrySetResult(e);

        string queue = "restart-" + Guid.NewGuid().ToString("N");
        await transport.DeclareQueueAsync(queue);
        Subscription<TestEvent> durable = await transport.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { Name = "survivor", MaxInFlight = 32 });
        Subscription<TestEvent> ephemeral = await transport.SubscribeAsync<TestEvent>(queue, ["#"]);

        // The consumer acks everything and counts what it saw; the sentinel ends it.
        var received = new ConcurrentDictionary<int, int>();
        var staleAcks = 0;
        Task consumer = Task.Run(async () =>
        {
            await foreach (Delivery<TestEvent> delivery in durable.ReadAllAsync())
            {
                if (!await delivery.AckAsync())
                {
                    // Its channel was lost: RabbitMQ delivers it again on the new one.
                    Interlocked.Increment(ref staleAcks);
                    continue;
                }

                if (delivery.Event == "sentinel")
                {
                    return;
                }

                received.AddOrUpdate(delivery.Payload.Number, 1, static (_, seen) => seen + 1);
            }
        });

        var confirmed = new ConcurrentBag<int>();
        var unconfirmed = new ConcurrentBag<(int Number, Exception Error)>();
        int next = 0;
        async Task PublishAsync(Func<int, bool> more, TaskCompletionSource? firstConfirmed = null)
        {
            for (int published = 0; more(published) && next < 20_000; published++)
            {
                int number = next++;
                try
                {
                    await transport.PublishAsync(queue, "tick", new TestEvent(number));
                    confirmed.Add(number);
                    firstConfirmed?.TrySetResult();
                }
                catch (Exception error) when (error is InvalidOperationException or TimeoutException)
                {
                    // Lost with the connection before its confirm: it may or may not be on the server.
                    unconfirmed.Add((number, error));
                }
            }
        }

        await PublishAsync(published => published < 200);

        // A stream that runs through the restart: it keeps publishing until the transport is back, then 100 more.
        var restarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var streaming = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int afterRestart = 0;
        Task stream = Task.Run(() => PublishAsync(_ => !restarted.Task.IsCompleted || afterRestart++ < 100, streaming));

        // The restart waits for the stream's first confirmed publish, so that publishing goes on before, during and after
        // it whatever the thread pool's pace: the 200 above, at least one of the stream's before the restart and the 100
        // after it make the more than 300 asserted below.
        await streaming.Task.OrHang("the stream's first confirmed publish");
        await RabbitMqServer.RestartAsync();
        await back.Task.OrHang("the transport to reconnect");
        restarted.TrySetResult();
        await stream.OrHang("the stream of publishes");

        (await lost.Task.OrHang("the ConnectionLost event")).Error.Should().NotBeNull();
        transport.IsConnected.Should().BeTrue();
        await transport.PublishAsync(queue, "sentinel", new TestEvent(-1));
        await consumer.OrHang("the consumer to read up to the sentinel after the restart");

        RabbitMqConnectionEventArgs reconnected = await back.Task;
        output.WriteLine(
            $"published {next}: {confirmed.Count} confirmed, {unconfirmed.Count} lost with the connection; " +
            $"received {received.Count} distinct, {received.Values.Count(v => v > 1)} more than once; {staleAcks} stale acks; reconnected after {reconnected.Attempts} attempts");
        confirmed.Should().HaveCountGreaterThan(300, "publishing went on before, during and after the restart");
        confirmed.Where(number => !received.ContainsKey(number)).Should().BeEmpty("every message whose publish completed was delivered");
        received.Keys.Should().OnlyContain(number => number >= 0 && number < next, "nothing arrives that was not published");
        unconfirmed.Select(u => u.Error.Message).Should().OnlyContain(message => message.Contains("RabbitMQ", StringComparison.Ordinal), "a failed publish says what happened");

        // The ephemeral subscription's queue went with the connection: it ended, and said why.
        (await FluentActions.Awaiting(() => ephemeral.Completion.OrHang("the ephemeral subscription to end")).Should().ThrowAsync<SubscriptionClosedException>())
            .Which.Reason.Should().Be(SubscriptionCloseReason.ConnectionLost);
        durable.Completion.IsCompleted.Should().BeFalse("the durable subscription resumed on the new connection");
        await durable.DisposeAsync();
    }

    [RabbitMqRestartFact]
    [Trait("Guarantee", "2")]
    public async Task ServerRestart_ConsumerBehind_GetsEverythingAgain_AndSettlesFromTheLostChannelChangeNothing()
    {
        await RabbitMqServer.SettledAsync();
        RabbitMqOptions options = RabbitMqServer.Options("restart-behind");
        options.ReconnectDelays = [TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500)];
        await using RabbitMqTransport transport = await RabbitMqTransport.ConnectAsync(options);
        var back = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        transport.Reconnected += (_, _) => back.TrySetResult();
        string queue = "behind-" + Guid.NewGuid().ToString("N");
        await transport.DeclareQueueAsync(queue);
        await using Subscription<TestEvent> durable = await transport.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { Name = "slow", MaxInFlight = 4 });
        for (int i = 0; i < 10; i++)
        {
            await transport.PublishAsync(queue, "tick", new TestEvent(i));
        }

        // One read and held, three more received into the consumer's buffer and not read, six waiting on the server.
        Delivery<TestEvent> held = await durable.ReadAsync().OrHang("the first delivery");
        await RabbitMqServer.RestartAsync();
        await back.Task.OrHang("the transport to reconnect");

        (await held.AckAsync()).Should().BeFalse("its channel is gone; RabbitMQ delivers it again");
        (await held.RejectAsync("too late")).Should().BeFalse();
        (await held.NackAsync(TimeSpan.FromSeconds(1))).Should().BeFalse();
        (await held.ExtendAsync()).Should().BeFalse();

        var numbers = new SortedSet<int>();
        while (numbers.Count < 10)
        {
            Delivery<TestEvent> delivery = await durable.ReadAsync().OrHang($"delivery {numbers.Count + 1} of 10 after the restart");
            (await delivery.AckAsync()).Should().BeTrue();
            numbers.Add(delivery.Payload.Number);
        }

        numbers.Should().Equal(Enumerable.Range(0, 10), "the buffer's leftovers of the lost channel did not block the new one");
    }

    [RabbitMqRestartFact]
    public async Task ServerDown_PublishTimesOutOnTheTransportsClock_AndDisposeReturnsPromptly()
    {
        await RabbitMqServer.SettledAsync();
        var clock = new MessageQueue.Testing.ManualTimeProvider();
        RabbitMqOptions options = RabbitMqServer.Options("outage");
        options.TimeProvider = clock;
        RabbitMqTransport transport = await RabbitMqTransport.ConnectAsync(options);
        var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        transport.ConnectionLost += (_, _) => lost.TrySetResult();
        string queue = "outage-" + Guid.NewGuid().ToString("N");
        await transport.DeclareQueueAsync(queue);
        Subscription<TestEvent> durable = await transport.SubscribeAsync<TestEvent>(queue, ["#"], new SubscriptionOptions { Name = "waiting" });

        await RabbitMqServer.WhileStoppedAsync(async () =>
        {
            await lost.Task.OrHang("the ConnectionLost event");
            transport.IsConnected.Should().BeFalse();

            // Down: a publish waits for the connection, within its timeout on the transport's clock.
            Task known = transport.PublishAsync(queue, "tick", new TestEvent(1), new PublishOptions { Timeout = TimeSpan.FromSeconds(5) }).AsTask();
            Task fresh = transport.PublishAsync("never-declared-" + Guid.NewGuid().ToString("N"), "tick", new TestEvent(2), new PublishOptions { Timeout = TimeSpan.FromSeconds(5) }).AsTask();
            known.IsCompleted.Should().BeFalse("it waits for the connection");
            clock.Advance(TimeSpan.FromSeconds(5));

            // Each publish ends on the advance; waited for under the hang guard, so that one that did not time out fails
            // the test here and the server is started again for the tests after this one.
            await Task.WhenAny(known).OrHang("the publish to a declared queue to time out on the transport's clock");
            await Task.WhenAny(fresh).OrHang("the publish to an undeclared queue to time out on the transport's clock");

            // The connection is down, so nothing is published; the message says so, with the server and the timeout.
            (await FluentActions.Awaiting(() => known).Should().ThrowAsync<TimeoutException>()).Which.Message.Should().Contain("RabbitMQ").And.Contain("00:00:05");
            (await FluentActions.Awaiting(() => fresh).Should().ThrowAsync<TimeoutException>()).Which.Message.Should().Contain("could not be declared");

            await transport.DisposeAsync().AsTask().OrHang("disposing while the server is down");
            await durable.Completion.OrHang("the durable subscription to complete when its owner disposed the transport");
        });
    }
}

/// <summary>Tests that restart the server run alone: nothing else may lose its connection halfway.</summary>
[CollectionDefinition(nameof(ServerRestarts), DisableParallelization = true)]
public sealed class ServerRestarts
{
}
