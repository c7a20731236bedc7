namespace MessageQueue.Persistence;

/// <summary>Where a durable queue keeps its messages: the broker's store writer, how hard it commits, and how payloads become bytes.</summary>
/// <param name="Writer">The broker's group-commit writer.</param>
/// <param name="Durability">How hard a commit is (never <see cref="Durability.InMemory"/>).</param>
/// <param name="Serializer">Turns the queue's payloads into bytes and back.</param>
internal readonly record struct QueueStore<T>(StoreWriter Writer, Durability Durability, IPayloadSerializer<T> Serializer);
