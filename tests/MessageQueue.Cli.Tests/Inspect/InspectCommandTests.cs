using System.CommandLine;
using MessageQueue.ContractTests.Support;
using MessageQueue.Sqlite;

namespace MessageQueue.Cli.Tests.Inspect;

/// <summary><c>mq inspect</c> on real store files, written by a real broker.</summary>
[Trait("Guarantee", "7")]
public sealed class InspectCommandTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private sealed record Order(int Number);

    /// <summary>A store with a queue, a durable subscription holding 3 messages (one delivered, unsettled) and a dead letter.</summary>
    private async Task<string> WriteStoreAsync()
    {
        string path = _directory.File("inspect.db");
        await using var broker = new Broker(new BrokerOptions { Store = new SqliteMessageStore(path), ShutdownTimeout = TimeSpan.Zero });
        Subscription<Order> billing = await broker.SubscribeAsync<Order>("orders", "order.*", new SubscriptionOptions { Name = "billing", MaxInFlight = 1 });
        for (int i = 1; i <= 4; i++)
        {
            await broker.PublishAsync("orders", "order.created", new Order(i));
        }

        await (await billing.ReadAsync().OrHang("order 1")).RejectAsync("card declined");
        _ = await billing.ReadAsync().OrHang("order 2"); // delivered, never settled
        return path;
    }

    [Fact]
    public async Task Inspect_StoreWrittenByABroker_ShowsQueuesBacklogInFlightAndDeadLetters()
    {
        string path = await WriteStoreAsync();
        var console = new CapturedConsole();

        int exitCode = await MqCommandLine.InvokeAsync(["inspect", path], console.Console);

        exitCode.Should().Be(0);
        console.Output.Should().Contain($"Store {path}");
        console.Output.Should().MatchRegex(@"orders\s+4\s+3\s+0\s+0", "the queue's last sequence is 4 and it holds 3 messages");
        console.Output.Should().MatchRegex(@"orders\s+billing\s+order\.\*\s+2\s+1", "two never delivered, one delivered and unsettled");
        console.Output.Should().MatchRegex(@"orders\.\$dlq\s+1\s+order\.created\s+rejected\s+billing\s+1\s+card declined");
    }

    [Fact]
    public async Task Inspect_StoreInUseByABroker_FailsWithTheReason()
    {
        string path = _directory.File("busy.db");
        await using var broker = new Broker(new BrokerOptions { Store = new SqliteMessageStore(path) });
        var console = new CapturedConsole();

        int exitCode = await MqCommandLine.InvokeAsync(["inspect", path], console.Console);

        exitCode.Should().Be(1);
        console.Output.Should().Contain("Cannot inspect").And.Contain("in use by another broker");
    }

    [Fact]
    public async Task Inspect_FileThatIsNotAStore_FailsWithTheReason()
    {
        string path = _directory.File("notes.txt");
        await File.WriteAllTextAsync(path, new string('x', 2048));
        var console = new CapturedConsole();

        int exitCode = await MqCommandLine.InvokeAsync(["inspect", path], console.Console);

        exitCode.Should().Be(1);
        console.Output.Should().Contain("not a SQLite database");
    }

    [Fact]
    public async Task Inspect_MissingFile_IsAParseErrorNamingThePath()
    {
        var console = new CapturedConsole();
        var error = new StringWriter();
        string path = _directory.File("missing.db");

        int exitCode = await MqCommandLine.InvokeAsync(["inspect", path], console.Console, new InvocationConfiguration { Error = error, Output = new StringWriter() });

        exitCode.Should().NotBe(0);
        error.ToString().Should().Contain($"No store file at '{path}'");
        File.Exists(path).Should().BeFalse("inspecting never creates a store");
    }
}
