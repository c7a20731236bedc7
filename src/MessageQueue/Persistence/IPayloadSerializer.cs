namespace MessageQueue.Persistence;

/// <summary>
/// Turns a durable queue's payloads into bytes for the store and back. The broker uses System.Text.Json
/// unless a queue is declared with another serializer. A serializer reads bytes only as
/// <typeparamref name="T"/>, the queue's declared type: never let stored data name the type to create.
/// </summary>
/// <typeparam name="T">The queue's payload type.</typeparam>
public interface IPayloadSerializer<T>
{
    /// <summary>Serializes a payload. Called on the publishing thread, outside every broker lock.</summary>
    /// <param name="payload">The payload.</param>
    /// <returns>The bytes to store.</returns>
    byte[] Serialize(T payload);

    /// <summary>Reads a payload back, when the queue is rebuilt from the store.</summary>
    /// <param name="data">The stored bytes.</param>
    /// <returns>The payload.</returns>
    T Deserialize(ReadOnlySpan<byte> data);
}
