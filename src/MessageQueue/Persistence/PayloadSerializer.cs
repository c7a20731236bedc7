using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace MessageQueue.Persistence;

/// <summary>
/// The default <see cref="IPayloadSerializer{T}"/>: System.Text.Json. A payload is only ever read back as the
/// queue's declared type: the store holds no type names to read.
/// </summary>
internal sealed class PayloadSerializer<T> : IPayloadSerializer<T>
{
    private readonly JsonTypeInfo<T> _typeInfo;

    private PayloadSerializer(JsonTypeInfo<T> typeInfo) => _typeInfo = typeInfo;

    /// <summary>With source-generated (trimming- and AOT-safe) metadata.</summary>
    public static PayloadSerializer<T> For(JsonTypeInfo<T> typeInfo) => new(typeInfo);

    /// <summary>With reflection-based metadata from <paramref name="options"/>.</summary>
    [System.Diagnostics.CodeAnalysis.RequiresUnreferencedCode("Reflection-based JSON; pass a JsonTypeInfo<T> for trimmed or AOT applications.")]
    [System.Diagnostics.CodeAnalysis.RequiresDynamicCode("Reflection-based JSON; pass a JsonTypeInfo<T> for trimmed or AOT applications.")]
    public static PayloadSerializer<T> For(JsonSerializerOptions options)
    {
        var resolved = new JsonSerializerOptions(options);
        resolved.TypeInfoResolver ??= new DefaultJsonTypeInfoResolver();
        resolved.MakeReadOnly();
        return new((JsonTypeInfo<T>)resolved.GetTypeInfo(typeof(T)));
    }

    public byte[] Serialize(T payload) => JsonSerializer.SerializeToUtf8Bytes(payload, _typeInfo);

    public T Deserialize(ReadOnlySpan<byte> payload) => JsonSerializer.Deserialize(payload, _typeInfo)!;
}
