using Xunit;

namespace MessageQueue.RabbitMQ.Tests;

/// <summary>A test that needs a RabbitMQ server: skipped, naming the command that starts one, when none answers outside CI.</summary>
public sealed class RabbitMqFactAttribute : FactAttribute
{
    public RabbitMqFactAttribute() => Skip = RabbitMqServer.SkipReason;
}

/// <summary>A test that restarts the RabbitMQ server: it needs one that eng/rabbitmq.sh started.</summary>
public sealed class RabbitMqRestartFactAttribute : FactAttribute
{
    public RabbitMqRestartFactAttribute() => Skip = RabbitMqServer.RestartSkipReason;
}

/// <summary>A theory that needs a RabbitMQ server; see <see cref="RabbitMqFactAttribute"/>.</summary>
public sealed class RabbitMqTheoryAttribute : TheoryAttribute
{
    public RabbitMqTheoryAttribute() => Skip = RabbitMqServer.SkipReason;
}
