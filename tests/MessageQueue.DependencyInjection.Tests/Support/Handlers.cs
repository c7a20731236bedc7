using MessageQueue.ContractTests.Support;

namespace MessageQueue.DependencyInjection.Tests.Support;

/// <summary>Records each order with the scope it ran in.</summary>
public sealed class OrderHandler(ScopedContext context, Recorder recorder) : IMessageHandler<Order>
{
    public ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
    {
        recorder.Record(new HandledCall(nameof(OrderHandler), delivery.Payload.Id, context.Id, delivery.Attempt));
        return ValueTask.CompletedTask;
    }
}

/// <summary>A second handler of the same queue, on its own subscription.</summary>
public sealed class AuditHandler(ScopedContext context, Recorder recorder) : IMessageHandler<Order>
{
    public ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
    {
        recorder.Record(new HandledCall(nameof(AuditHandler), delivery.Payload.Id, context.Id, delivery.Attempt));
        return ValueTask.CompletedTask;
    }
}

/// <summary>Always fails.</summary>
public sealed class FailingHandler(Recorder recorder) : IMessageHandler<Order>
{
    public ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
    {
        recorder.Record(new HandledCall(nameof(FailingHandler), delivery.Payload.Id, Guid.Empty, delivery.Attempt));
        throw new InvalidOperationException($"order {delivery.Payload.Id} cannot be processed");
    }
}

/// <summary>
/// Records, then waits at the test's gate with its own token, which the host cancels when its shutdown time runs out
/// (or a handler timeout does).
/// </summary>
public sealed class GatedHandler(TestGate gate, Recorder recorder, AuditScope? scope = null) : IMessageHandler<Order>
{
    public async ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
    {
        // The scoped service where the host registers one (the Generic Host test does), else none.
        recorder.Record(new HandledCall(nameof(GatedHandler), delivery.Payload.Id, scope?.Id ?? Guid.Empty, delivery.Attempt));
        await gate.PassAsync(cancellationToken);
    }
}

/// <summary>Rejects every order itself: the host's ack afterwards must do nothing.</summary>
public sealed class RejectingHandler(Recorder recorder) : IMessageHandler<Order>
{
    public async ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
    {
        recorder.Record(new HandledCall(nameof(RejectingHandler), delivery.Payload.Id, Guid.Empty, delivery.Attempt));
        await delivery.RejectAsync("not for us", cancellationToken);
    }
}

/// <summary>Handles invoices.</summary>
public sealed class InvoiceHandler(Recorder recorder) : IMessageHandler<Invoice>
{
    public ValueTask HandleAsync(Delivery<Invoice> delivery, CancellationToken cancellationToken)
    {
        recorder.Record(new HandledCall(nameof(InvoiceHandler), delivery.Payload.OrderId, Guid.Empty, delivery.Attempt));
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Records with its scope, then waits at the test's gate without looking at its token: a handler that cannot be cut
/// short. Only the test opens its gate, so a test that uses it opens the gate in a <c>finally</c>. Its scope is
/// disposed after the host's ack of the call, so the scope's disposal says the call has finished for good.
/// </summary>
public sealed class StubbornHandler(ScopedContext context, TestGate gate, Recorder recorder) : IMessageHandler<Order>
{
    public async ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
    {
        recorder.Record(new HandledCall(nameof(StubbornHandler), delivery.Payload.Id, context.Id, delivery.Attempt));
        await gate.PassAsync(CancellationToken.None);
    }
}

/// <summary>Rejects the order itself, then throws: the throw must not count as a failure of the message.</summary>
public sealed class RejectThenThrowHandler(Recorder recorder) : IMessageHandler<Order>
{
    public async ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken)
    {
        recorder.Record(new HandledCall(nameof(RejectThenThrowHandler), delivery.Payload.Id, Guid.Empty, delivery.Attempt));
        await delivery.RejectAsync("bad order", cancellationToken);
        throw new InvalidOperationException("thrown after rejecting");
    }
}

/// <summary>A service nobody registered.</summary>
public sealed class MissingService;

/// <summary>Takes a service the container does not have: the host must refuse to start, not dead-letter every message.</summary>
public sealed class NeedsAMissingServiceHandler(MissingService missing) : IMessageHandler<Order>
{
    public ValueTask HandleAsync(Delivery<Order> delivery, CancellationToken cancellationToken) =>
        throw new InvalidOperationException($"never called: {missing}");
}

/// <summary>A scoped service of the audit handler, apart from <see cref="ScopedContext"/> so that its scopes are not counted with fulfilment's.</summary>
public sealed class AuditScope
{
    public Guid Id { get; } = Guid.NewGuid();
}
