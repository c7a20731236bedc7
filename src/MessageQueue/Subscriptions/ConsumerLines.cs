using System.Runtime.InteropServices;

namespace MessageQueue;

/// <summary>
/// What a publisher writes when it hands a consumer a delivery, alone on its cache lines: the ring's
/// write position, the publisher's copy of the settled count, and whether deliveries have stopped.
/// </summary>
/// <remarks>
/// The runtime groups a class's fields by size, not by declaration, so two longs written by two cores
/// can end up side by side. Padding keeps the publisher's and the reader's hot fields apart, so that a
/// publisher and a consumer on two cores do not pull one cache line back and forth on every message.
/// Not nested in the generic consumer: a generic type cannot have an explicit layout.
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal struct PublisherLine
{
    /// <summary>Deliveries pushed so far: the ring's write position. Published with a volatile write after the slot.</summary>
    [FieldOffset(64)]
    public long Pushed;

    /// <summary>The last settled count the publisher read; never ahead of the real one.</summary>
    [FieldOffset(72)]
    public long SettledSeen;

    /// <summary>No more deliveries for this consumer.</summary>
    [FieldOffset(80)]
    public bool Stopped;
}

/// <summary>What a consumer's readers write, under its table's lock, alone on its cache lines.</summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal struct ReaderLine
{
    /// <summary>The ring's read position.</summary>
    [FieldOffset(64)]
    public long Read;

    /// <summary>The reader's copy of <see cref="PublisherLine.Pushed"/>, re-read only when it says the ring is empty.</summary>
    [FieldOffset(72)]
    public long PushedSeen;
}
