using System.Runtime.InteropServices;

namespace MessageQueue;

/// <summary>
/// A 64-bit counter alone on its cache line. Counters written by consumers are kept apart from state
/// written by publishers, so that the two sides of a queue do not pull one cache line back and forth
/// on every message.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal struct PaddedCounter
{
    [FieldOffset(64)]
    public long Value;
}
