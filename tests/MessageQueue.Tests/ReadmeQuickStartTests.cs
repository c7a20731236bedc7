using FluentAssertions;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests;

/// <summary>The README's quick start, kept compiling and true. If this changes, change the README too.</summary>
public sealed class ReadmeQuickStartTests
{
    public sealed record DbChange(string Table, int Id);

    [Fact]
    public async Task QuickStart_AsWrittenInTheReadme_DeliversToBothSubscribers()
    {
        var printed = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);

        await using var broker = new Broker();
        broker.DeclareQueue<DbChange>("database", new QueueOptions { MaxMessages = 10_000 });

        // A durable subscription keeps collecting while no consumer is attached.
        await using BrokerClient auditor = broker.Connect("auditor");
        Subscription<DbChange> audit = await auditor.SubscribeAsync<DbChange>(
            "database", ["add", "delete.*"], new SubscriptionOptions { Name = "audit" });

        // The handler form acks when the handler returns and nacks (redelivers) when it throws.
        await using Subscription printer = await broker.SubscribeAsync<DbChange>("database", "#", (delivery, cancellationToken) =>
        {
            printed.TrySetResult($"printer: {delivery.Event} {delivery.Payload}");
            return ValueTask.CompletedTask;
        });

        PublishReceipt receipt = await broker.PublishAsync("database", "add", new DbChange("users", 42));

        Delivery<DbChange> next = await audit.ReadAsync();
        $"audit: #{next.Message.Sequence} {next.Event}, attempt {next.Attempt}".Should().Be("audit: #1 add, attempt 1");
        (await next.AckAsync()).Should().BeTrue();

        (await printed.Task.OrHang("the printer handler")).Should().Be("printer: add DbChange { Table = users, Id = 42 }");
        receipt.Sequence.Should().Be(1);
    }
}
