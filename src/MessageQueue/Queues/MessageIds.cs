using System.Security.Cryptography;

namespace MessageQueue;

/// <summary>
/// Message ids for one queue incarnation: a random prefix plus the message's sequence, laid out as an RFC 9562 version 8
/// (custom) UUID. Unique, cheap, and free of allocation; not meant to be unguessable.
/// </summary>
internal readonly struct MessageIds
{
    private readonly int _a;
    private readonly short _b;
    private readonly short _c;

    private MessageIds(int a, short b, short c)
    {
        _a = a;
        _b = b;
        _c = c;
    }

    /// <summary>A new random prefix.</summary>
    public static MessageIds Create()
    {
        Span<byte> random = stackalloc byte[8];
        RandomNumberGenerator.Fill(random);
        return new MessageIds(
            BitConverter.ToInt32(random),
            BitConverter.ToInt16(random[4..]),
            (short)((BitConverter.ToUInt16(random[6..]) & 0x0FFF) | 0x8000)); // version 8 (custom)
    }

    /// <summary>The id of the message with <paramref name="sequence"/>.</summary>
    public Guid For(long sequence) => new(
        _a,
        _b,
        _c,
        (byte)(0x80 | ((sequence >> 56) & 0x3F)), // RFC 9562 variant bits
        (byte)(sequence >> 48),
        (byte)(sequence >> 40),
        (byte)(sequence >> 32),
        (byte)(sequence >> 24),
        (byte)(sequence >> 16),
        (byte)(sequence >> 8),
        (byte)sequence);
}
