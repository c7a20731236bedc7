using FluentAssertions;
using MessageQueue.DependencyInjection.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace MessageQueue.DependencyInjection.Tests.Registration;

/// <summary>
/// Mistakes in registration code fail at the call, with an exception that names the problem and what to do.
/// (Mistakes in options and configuration are collected and reported on start: see ConfigurationAndValidationTests.)
/// </summary>
public sealed class BadInputCatalogueTests
{
    public static TheoryData<string, Action<IServiceCollection>, string, string> Cases() => new()
    {
        { "empty queue name", s => s.AddMessageHandler<OrderHandler, Order>("", "#"), "queue", "Queue name is empty" },
        { "queue name with a space", s => s.AddMessageHandler<OrderHandler, Order>("my orders", "#"), "queue", "contains 'U+0020'" },
        { "no filters", s => s.AddMessageHandler<OrderHandler, Order>("orders", Array.Empty<string>()), "filters", "pass at least one" },
        { "filter with an empty word", s => s.AddMessageHandler<OrderHandler, Order>("orders", "order..created"), "filters", "empty word" },
        { "subscription name with '$'", s => s.AddMessageHandler<OrderHandler, Order>("orders", "#", "$billing"), "subscriptionName", "reserved" },
        { "declared queue name invalid", s => s.AddMessageBroker(b => b.DeclareQueue<Order>("orders!")), "name", "contains '!'" },
        { "empty configuration section", s => s.AddMessageBroker(b => b.BindConfiguration(" ")), "sectionPath", "whitespace" },
        { "SQLite without a path", s => s.AddMessageBroker(b => b.UseSqlite("")), "path", "Path is empty" },
        { "SQLite file size too small", s => s.AddMessageBroker(b => b.UseSqlite("broker.db", o => o.MaxFileSize = 10)), "configure", "at least 65536" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Registration_WithBadInput_ThrowsArgumentExceptionNamingTheProblem(string name, Action<IServiceCollection> register, string parameter, string says)
    {
        var services = new ServiceCollection();

        Action act = () => register(services);

        ArgumentException error = act.Should().Throw<ArgumentException>(name).Which;
        error.ParamName.Should().Be(parameter);
        error.Message.Should().Contain(says);
    }

    [Fact]
    public void NullArguments_ThrowArgumentNullException()
    {
        var services = new ServiceCollection();
        ((Action)(() => MessageQueueServiceCollectionExtensions.AddMessageBroker(null!))).Should().Throw<ArgumentNullException>();
        ((Action)(() => services.AddMessageHandler<OrderHandler, Order>("orders", (IEnumerable<string>)null!))).Should().Throw<ArgumentNullException>();
        ((Action)(() => services.AddMessageHandler<OrderHandler, Order>(null!, "#"))).Should().Throw<ArgumentNullException>();
        ((Action)(() => services.AddMessageBroker(b => b.ConfigureBroker(null!)))).Should().Throw<ArgumentNullException>();
        ((Action)(() => services.AddMessageBroker(b => b.UseStore(null!)))).Should().Throw<ArgumentNullException>();
    }
}
