using FluentAssertions;
using MessageQueue.Testing.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MessageQueue.Testing.Tests.Harness;

/// <summary>
/// The same scenario, 200 times in a row (200 test cases), and 100 harnesses at once: a harness decided by counts has
/// nothing to flake on, and harnesses share nothing.
/// </summary>
public sealed class ReliabilityTests(ITestOutputHelper output)
{
    public static TheoryData<int> Runs()
    {
        var runs = new TheoryData<int>();
        for (int run = 1; run <= 200; run++)
        {
            runs.Add(run);
        }

        return runs;
    }

    [Theory]
    [MemberData(nameof(Runs))]
    public async Task TheSameScenario_Passes_EveryTime(int run)
    {
        ScenarioResult result = await Scenario.RunAsync(run);
        result.Verify();
    }

    [Fact]
    public async Task OneHundredHarnesses_AtOnce_EachExact()
    {
        long started = TimeProvider.System.GetTimestamp();
        ScenarioResult[] results = await Task.WhenAll(Enumerable.Range(1, 100).Select(run => Task.Run(() => Scenario.RunAsync(run))));
        TimeSpan took = TimeProvider.System.GetElapsedTime(started);

        // Each checks its own exact counts, and that it saw only its own messages.
        foreach (ScenarioResult result in results)
        {
            result.Verify();
        }

        // Reported, not asserted: absolute times are noise on a shared machine. .ci/run prints this line.
        output.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"100 concurrent harnesses finished in {took.TotalMilliseconds:F0} ms"));
    }

    [Fact]
    public void TheLibraries_HoldNoMutableStaticState()
    {
        // Every static field of the core, the DI package and this package that one harness could change and another
        // see: writable fields, and read-only ones holding a mutable collection. Per-thread and per-async-flow state
        // is not shared between harnesses, so it is allowed by name, with why.
        var allowed = new Dictionary<string, string>
        {
            ["MessageQueue.Persistence.StoreWriter.t_onWriterThread"] = "[ThreadStatic]: whether this thread is the store writer's",
        };
        var found = new List<string>();
        foreach (System.Reflection.Assembly assembly in new[] { typeof(Broker).Assembly, typeof(MessageQueue.DependencyInjection.MessageBrokerBuilder).Assembly, typeof(BrokerTestHarness).Assembly })
        {
            foreach (Type type in assembly.GetTypes())
            {
                foreach (System.Reflection.FieldInfo field in type.GetFields(System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.DeclaredOnly))
                {
                    string name = $"{type.FullName}.{field.Name}";
                    if (field.IsLiteral || allowed.ContainsKey(name))
                    {
                        continue;
                    }

                    if (!field.IsInitOnly && !field.Name.Contains('<', StringComparison.Ordinal))
                    {
                        found.Add($"{name} : {field.FieldType.Name} is writable");
                    }
                    else if (field.IsInitOnly && !type.ContainsGenericParameters && IsMutableCollection(field.GetValue(null)))
                    {
                        // The value, not the declared type: an IReadOnlyDictionary field may hold a Dictionary.
                        found.Add($"{name} : holds a {field.GetValue(null)!.GetType().Name}");
                    }
                }
            }
        }

        found.Should().BeEmpty("harness instances must share nothing");
        typeof(Broker).Assembly.GetType("MessageQueue.Persistence.StoreWriter")!
            .GetField("t_onWriterThread", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)
            .Should().NotBeNull("the allowed field exists, so the check above did look at it");
    }

    /// <summary>A collection someone could add to: not an array (fixed length), and not frozen, immutable or read-only.</summary>
    private static bool IsMutableCollection(object? value)
    {
        if (value is not System.Collections.IEnumerable || value is string || value is Array)
        {
            return false;
        }

        string ns = value.GetType().Namespace ?? string.Empty;
        string typeName = value.GetType().Name;
        return !ns.StartsWith("System.Collections.Frozen", StringComparison.Ordinal)
            && !ns.StartsWith("System.Collections.Immutable", StringComparison.Ordinal)
            && !typeName.StartsWith("ReadOnly", StringComparison.Ordinal)
            && !typeName.StartsWith("Frozen", StringComparison.Ordinal)
            && !typeName.StartsWith("Empty", StringComparison.Ordinal)
            && value is System.Collections.ICollection or System.Collections.IDictionary or System.Collections.IList;
    }

    /// <summary>
    /// Ten orders to a queue with two subscriptions; every third order fails once on "shipping"; shipping publishes
    /// into a second queue with its own handler. Everything is decided by counts and the manual clock.
    /// </summary>
    private static class Scenario
    {
        public static async Task<ScenarioResult> RunAsync(int run)
        {
            await using var harness = new BrokerTestHarness();
            harness.Broker.DeclareQueue<Order>("orders");
            harness.Broker.DeclareQueue<Shipment>("shipments");
            var failedOnce = new HashSet<int>();
            await using Subscription shipping = await harness.SubscribeAsync<Order>("orders", ["order.*"], async (delivery, ct) =>
            {
                Order order = delivery.Payload;
                lock (failedOnce)
                {
                    if (order.Id % 3 == 0 && failedOnce.Add(order.Id))
                    {
                        throw new InvalidOperationException($"order {order.Id} fails once");
                    }
                }

                await harness.PublishAsync("shipments", "order.shipped", new Shipment(order.Id, order.Item), cancellationToken: ct);
            }, new SubscriptionOptions { Name = "shipping", MaxInFlight = 4 });
            await using Subscription audit = await harness.SubscribeAsync<Order>("orders", ["#"], static (_, _) => ValueTask.CompletedTask, new SubscriptionOptions { Name = "audit" });
            await using Subscription notify = await harness.SubscribeAsync<Shipment>("shipments", ["#"], static (_, _) => ValueTask.CompletedTask);

            for (int i = 1; i <= 10; i++)
            {
                await harness.PublishAsync("orders", "order.created", new Order(i, $"item {run}.{i}"));
            }

            await harness.AdvanceTimeAsync(TimeSpan.FromSeconds(2));
            await harness.WaitForIdleAsync();
            return new ScenarioResult(run, harness.Records, harness.Broker.GetSnapshot());
        }
    }

    private sealed record ScenarioResult(int Run, MessageRecords Records, BrokerSnapshot Snapshot)
    {
        public void Verify()
        {
            Records.OfKind(MessageRecordKind.Published).ForQueue("orders").Count.Should().Be(10);
            Records.OfKind(MessageRecordKind.Published).ForQueue("shipments").Count.Should().Be(10);
            Records.OfKind(MessageRecordKind.Nacked).ForSubscription("shipping").Payloads<Order>().Select(o => o.Id).Order().Should().Equal(3, 6, 9);
            Records.OfKind(MessageRecordKind.Acked).ForSubscription("shipping").Count.Should().Be(10);
            Records.OfKind(MessageRecordKind.Acked).ForSubscription("audit").Count.Should().Be(10);
            Records.OfKind(MessageRecordKind.Acked).ForQueue("shipments").Count.Should().Be(10);
            Records.OfKind(MessageRecordKind.Delivered).Count.Should().Be(33, "10 + 3 redeliveries on shipping, 10 on audit, 10 on shipments");
            Records.OfKind(MessageRecordKind.DeadLettered).Should().BeEmpty();
            Records.OfKind(MessageRecordKind.Published).ForQueue("orders").Payloads<Order>().Should().AllSatisfy(o => o.Item.Should().StartWith($"item {Run}."), "each harness sees only its own messages");
            Snapshot.Queue("orders").Depth.Should().Be(0);
            Snapshot.Queue("shipments").Depth.Should().Be(0);
        }
    }
}
