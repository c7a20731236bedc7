namespace MessageQueue.DependencyInjection.Tests.Support;

public sealed record Order(int Id, string Item);

public sealed record Invoice(int OrderId, decimal Amount);
