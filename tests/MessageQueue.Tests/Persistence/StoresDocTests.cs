using System.Text.Json;
using System.Text.RegularExpressions;
using FluentAssertions;
using MessageQueue.ContractTests.Support;
using MessageQueue.Persistence;
using Xunit;

namespace MessageQueue.Tests.Persistence;

/// <summary>
/// docs/stores.md, kept compiling and true: each of its C# blocks is the code of the file it names (so it compiles
/// with that file), and its example of what <see cref="IMessageStore.Load"/> returns is what a broker rebuilds.
/// </summary>
[Trait("Guarantee", "7")]
public sealed partial class StoresDocTests
{
    public sealed record OrderPlaced(long Number);

    [Fact]
    public async Task LoadExample_AsWrittenInTheDoc_IsWhatTheBrokerRebuilds()
    {
        // --- docs/stores.md, "What Load returns", from here ---
        var placed = new DateTimeOffset(2026, 11, 21, 9, 0, 0, TimeSpan.Zero);
        StoredMessage Order(long sequence) => new()
        {
            Queue = "orders",
            Sequence = sequence,
            Id = Guid.NewGuid(),
            Event = "order.created",
            Payload = JsonSerializer.SerializeToUtf8Bytes(new OrderPlaced(sequence)), // the bytes the queue's serializer wrote
            Timestamp = placed.AddSeconds(sequence),
        };

        // Message 1 is gone (settled everywhere), 2 and 3 are kept. "billing" was delivered everything up to 2
        // (its cursor), and message 2 came back to it after 3 deliveries. "audit" was delivered everything up to 3,
        // and acked 2, which billing still holds.
        var orders = new StoredQueueState
        {
            Name = "orders",
            LastSequence = 3,
            Messages = [Order(2), Order(3)],
            Subscriptions =
            [
                new StoredSubscriptionState
                {
                    Subscription = new StoredSubscription { Queue = "orders", Name = "billing", Filters = ["order.*"], StartAfter = 0 },
                    Cursor = 2,
                    Deliveries = new Dictionary<long, int> { [2] = 3 },
                },
                new StoredSubscriptionState
                {
                    Subscription = new StoredSubscription { Queue = "orders", Name = "audit", Filters = ["#"], StartAfter = 0 },
                    Cursor = 3,
                    Acked = new HashSet<long> { 2 },
                },
            ],
        };
        // --- to here ---

        await using var broker = new Broker(new BrokerOptions { Store = new LoadOnlyStore([orders]) });
        broker.DeclareQueue<OrderPlaced>("orders");
        await using Subscription<OrderPlaced> billing = await broker.SubscribeAsync<OrderPlaced>("orders", "order.*", new SubscriptionOptions { Name = "billing" });
        await using Subscription<OrderPlaced> audit = await broker.SubscribeAsync<OrderPlaced>("orders", "#", new SubscriptionOptions { Name = "audit" });

        var billed = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            Delivery<OrderPlaced> delivery = await billing.ReadAsync().OrHang($"billing's delivery {i + 1}");
            billed.Add($"#{delivery.Message.Sequence} {delivery.Payload.Number} attempt {delivery.Attempt}");
            (await delivery.AckAsync()).Should().BeTrue();
        }

        Delivery<OrderPlaced> audited = await audit.ReadAsync().OrHang("audit's delivery");
        (await audited.AckAsync()).Should().BeTrue();
        PublishReceipt next = await broker.PublishAsync("orders", "order.created", new OrderPlaced(4));
        Delivery<OrderPlaced> fourth = await audit.ReadAsync().OrHang("audit's second delivery");
        (await fourth.AckAsync()).Should().BeTrue();

        billed.Should().Equal(["#2 2 attempt 4", "#3 3 attempt 1"], "2 comes back after its 3 deliveries; 3 is past billing's cursor, never delivered");
        $"#{audited.Message.Sequence} attempt {audited.Attempt}".Should().Be("#3 attempt 2", "audit acked 2, and 3 is within its cursor: delivered once");
        next.Sequence.Should().Be(4, "the queue goes on after LastSequence");
        fourth.Message.Sequence.Should().Be(4, "audit had nothing else before the new message");
    }

    [Fact]
    public void EveryCodeBlock_OfTheDoc_IsTheCodeOfTheFileItNames()
    {
        string root = Repository.Root();
        var blocks = new List<(string File, string[] Lines)>();
        string? named = null;
        List<string>? block = null;
        bool inOtherBlock = false;
        foreach (string line in File.ReadAllLines(Path.Combine(root, "docs", "stores.md")))
        {
            if (block is not null)
            {
                if (line == "```")
                {
                    blocks.Add((named!, [.. block]));
                    (block, named) = (null, null);
                }
                else
                {
                    block.Add(line);
                }
            }
            else if (inOtherBlock)
            {
                inOtherBlock = line != "```";
            }
            else if (line == "```csharp")
            {
                named.Should().NotBeNull("every C# block of docs/stores.md names, in the text just before it, the file of the repository it is copied from");
                block = [];
            }
            else if (line.StartsWith("```", StringComparison.Ordinal))
            {
                inOtherBlock = true;
            }
            else if (RepositoryPath().Matches(line) is { Count: > 0 } paths)
            {
                named = paths[^1].Groups[1].Value;
            }
        }

        blocks.Should().HaveCountGreaterThanOrEqualTo(4, "the doc shows what Load returns, both contract test classes and a builder extension");
        foreach ((string file, string[] lines) in blocks)
        {
            string[] source = File.ReadAllLines(Path.Combine(root, file));
            Contains(source, lines).Should().BeTrue($"docs/stores.md shows this as code of {file}, so that it compiles; copy it again from the file:{Environment.NewLine}{string.Join(Environment.NewLine, lines)}");
        }
    }

    /// <summary>Whether <paramref name="block"/> is in <paramref name="source"/> line by line, all of it indented alike.</summary>
    private static bool Contains(string[] source, string[] block)
    {
        for (int start = 0; start + block.Length <= source.Length; start++)
        {
            if (!source[start].EndsWith(block[0], StringComparison.Ordinal))
            {
                continue;
            }

            string indent = source[start][..^block[0].Length];
            if (indent.Trim().Length == 0 && block.Select((line, i) => line.Length == 0 ? source[start + i].Trim().Length == 0 : source[start + i] == indent + line).All(same => same))
            {
                return true;
            }
        }

        return false;
    }

    [GeneratedRegex(@"`((?:src|tests)/[\w./-]+\.cs)`")]
    private static partial Regex RepositoryPath();

    /// <summary>A store that reads back a fixed state and keeps nothing written to it.</summary>
    private sealed class LoadOnlyStore(IReadOnlyList<StoredQueueState> state) : IMessageStore
    {
        public IReadOnlyList<StoredQueueState> Load() => state;

        public void Write(StoreBatch batch)
        {
        }

        public void Dispose()
        {
        }
    }
}
