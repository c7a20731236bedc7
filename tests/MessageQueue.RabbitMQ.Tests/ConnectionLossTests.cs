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
        async Task PublishAsync(Func<int, bool> more)
        {
            for (int published = 0; more(published) && next < 20_000; published++)
            {
                int number = next++;
                try
                {
                    await transport.PublishAsync(queue, "tick", new TestEvent(number));
                    confirmed.Add(number);
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
        int afterRestart = 0;
        Task stream = Task.Run(() => PublishAsync(_ => !restarted.Task.IsCompleted || afterRestart++ < 100));
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
        (await FluentActions.Awaiting(() => ephemeral.Completion).Should().ThrowAsync<SubscriptionClosedException>())
            .Which.Reason.Should().Be(SubscriptionCloseReason.ConnectionLost);
        durable.Completion.IsCompleted.Should().BeFalse("the durable subscription resumed on the new connection");
        await durable.DisposeAsync();
    }
}

/// <summary>Tests that restart the server run alone: nothing else may lose its connection halfway.</summary>
[CollectionDefinition(nameof(ServerRestarts), DisableParallelization = true)]
public sealed class ServerRestarts
{
}
