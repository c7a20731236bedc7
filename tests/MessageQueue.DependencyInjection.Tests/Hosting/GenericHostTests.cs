using System.Reflection;
using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.DependencyInjection.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace MessageQueue.DependencyInjection.Tests.Hosting;

/// <summary>
/// The whole life of an app in a real Generic Host on the SQLite store: two hosted handlers run with scoped
/// services, the host stops while messages are in flight, and a restarted host finds every one of them.
/// </summary>
public sealed class GenericHostTests : IDisposable
{
    private const int Orders = 10;
    private readonly TempDirectory _directory = new();

    [Fact]
    [Trait("Guarantee", "10")]
    public async Task StopWhileMessagesAreInFlight_RestartWithTheSqliteStore_NothingIsLost()
    {
        var recorder = new Recorder();
        var logs = new LogSink();

        // First run: "fulfilment" handles everything; "audit" is stuck on order 1 when the host stops.
        using var stuck = new TestGate("audit's handler, on order 1, until the first host's shutdown time runs out");
        using (IHost first = BuildHost(recorder, logs, stuck))
        {
            await first.StartAsync();
            try
            {
                IPublisher publisher = first.Services.GetRequiredService<IPublisher>();
                for (int i = 1; i <= Orders; i++)
                {
                    await publisher.PublishAsync("orders", "created", new Order(i, "tea"));
                }

                // A scope is disposed after its message is acked: ten disposed scopes mean fulfilment settled all ten.
                await recorder.WaitForDisposedScopes(Orders).OrHang("fulfilment handles and acks all ten");
                await stuck.WaitForInside(1).OrHang("audit holds order 1");

                // The host's shutdown timeout runs out (cancelled here rather than waited for): audit's handler is cancelled.
                using var shutdownTimeout = new CancellationTokenSource();
                Task stopping = first.StopAsync(shutdownTimeout.Token);
                await shutdownTimeout.CancelAsync();
                await stopping.OrHang("the first host's stop");
            }
            finally
            {
                // When the test failed before the stop cancelled audit's handler: disposing a host does not stop it, and
                // the broker's disposal would wait for that handler until its shutdown timeout. The gate opens first.
                stuck.Open();
            }
        }

        recorder.Calls.Where(c => c.Handler == nameof(OrderHandler)).Select(c => c.OrderId).Should().Equal(Enumerable.Range(1, Orders));
        recorder.Calls.Where(c => c.Handler == nameof(OrderHandler)).Select(c => c.Scope).Distinct().Should().HaveCount(Orders, "a scope per message");
        recorder.DisposedScopes.Should().HaveCount(Orders, "every scope was disposed");
        recorder.Calls.Where(c => c.Handler == nameof(GatedHandler)).Select(c => c.OrderId).Should().Equal([1]);
        logs.WithEvent(6).Should().ContainSingle().Which.Message.Should().Contain("1 calls of handler GatedHandler");
        logs.WithEvent(5).Should().ContainSingle(e => e.Message.Contains("GatedHandler", StringComparison.Ordinal))
            .Which.Message.Should().Contain($"0 messages handled; {Orders - 1} prefetched and 1 unfinished messages went back to subscription 'audit'");
        logs.WithEvent(9).Should().ContainSingle().Which.Message.Should().Contain($"{Orders} messages handled; {Orders} messages went back");

        // Second run, same store file, the audit handler no longer stuck: it gets all ten, in order; fulfilment gets nothing again.
        using TestGate opened = OpenGate();
        using (IHost second = BuildHost(recorder, logs, opened))
        {
            await second.StartAsync();
            await recorder.WaitForCalls(1 + Orders, nameof(GatedHandler)).OrHang("audit catches up on all ten");
            await second.StopAsync();
            SubscriptionSnapshot audit = second.Services.GetRequiredService<Broker>().GetSnapshot().Queues.Single(q => q.Name == "orders").Subscription("audit");
            audit.Acked.Should().Be(Orders);
            audit.Backlog.Should().Be(0);
        }

        List<HandledCall> audited = recorder.Calls.Where(c => c.Handler == nameof(GatedHandler)).Skip(1).ToList();
        audited.Select(c => c.OrderId).Should().Equal(Enumerable.Range(1, Orders), "the restarted subscription delivers in publish order");
        audited[0].Attempt.Should().Be(1, "the stop cut order 1's handler short, which uses no attempt, across a restart too");
        audited.Skip(1).Should().OnlyContain(c => c.Attempt == 1, "prefetched but unread messages were not counted as attempts");
        recorder.Calls.Where(c => c.Handler == nameof(GatedHandler)).Select(c => c.Scope).Should()
            .OnlyHaveUniqueItems("the audit handler's scoped service is new for every message").And.NotContain(Guid.Empty);
        recorder.Calls.Count(c => c.Handler == nameof(OrderHandler)).Should().Be(Orders, "fulfilment had acked everything; nothing came twice");
    }

    [Fact]
    public void TheHost_IsMicrosoftExtensionsHosting_10_0_14_OrLater()
    {
        // The project references the package (pruning off), so the host is the package's build even where the
        // ASP.NET Core shared framework installed is older.
        string version = typeof(Host).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        Version.Parse(version.Split('+', '-')[0]).Should().BeGreaterThanOrEqualTo(new Version(10, 0, 14), version);
    }

    [Fact]
    public async Task MessagesPublishedWhileTheHostIsStopped_AreHandledAfterItStarts()
    {
        var recorder = new Recorder();
        using TestGate opened = OpenGate();
        using (IHost first = BuildHost(recorder, new LogSink(), opened))
        {
            await first.StartAsync();
            await first.StopAsync();

            // Stopped, the container still alive: the durable subscriptions keep what arrives (and the store keeps it).
            await first.Services.GetRequiredService<IPublisher>().PublishAsync("orders", "created", new Order(42, "coffee"));
        }

        using IHost second = BuildHost(recorder, new LogSink(), opened);
        await second.StartAsync();
        await recorder.WaitForCalls(1, nameof(OrderHandler)).OrHang("fulfilment gets order 42");
        await recorder.WaitForCalls(1, nameof(GatedHandler)).OrHang("audit gets order 42");
        await second.StopAsync();
        recorder.Calls.Select(c => c.OrderId).Should().OnlyContain(id => id == 42).And.HaveCount(2);
    }

    public void Dispose() => _directory.Dispose();

    /// <summary>A gate that is open from the start: the audit handler passes at once.</summary>
    private static TestGate OpenGate()
    {
        var gate = new TestGate("audit's handler (open)");
        gate.Open();
        return gate;
    }

    private IHost BuildHost(Recorder recorder, LogSink logs, TestGate gate) => TestHosts.Build(
        services =>
        {
            services.AddSingleton(recorder);
            services.AddSingleton(gate);
            services.AddScoped<ScopedContext>();
            services.AddScoped<AuditScope>();
            services.AddMessageBroker(b => b.DeclareQueue<Order>("orders").UseSqlite(_directory.File("app.db")));
            services.AddMessageHandler<OrderHandler, Order>("orders", "#", "fulfilment");
            services.AddMessageHandler<GatedHandler, Order>("orders", "#", "audit");
        },
        logs);
}
