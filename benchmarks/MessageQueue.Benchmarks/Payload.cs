namespace MessageQueue.Benchmarks;

/// <summary>The message every suite moves: a small immutable record, as users would publish.</summary>
public sealed record Payload(int Value);
