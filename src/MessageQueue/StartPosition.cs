using System.Globalization;

namespace MessageQueue;

/// <summary>
/// Where a new subscription starts reading: at new messages (the default), or, on a queue with
/// <see cref="RetentionPolicy.Limits"/> retention, at retained messages from a sequence, a time, or the beginning.
/// </summary>
public readonly struct StartPosition : IEquatable<StartPosition>
{
    private readonly Kind _kind;
    private readonly long _value;

    private StartPosition(Kind kind, long value)
    {
        _kind = kind;
        _value = value;
    }

    private enum Kind
    {
        New,
        All,
        Sequence,
        Time,
    }

    /// <summary>Gets the position after the last message published: only messages published from now on. The default.</summary>
    public static StartPosition New => default;

    /// <summary>Gets the position of the oldest message the queue retains.</summary>
    public static StartPosition All => new(Kind.All, 0);

    /// <summary>Gets whether this is <see cref="New"/>.</summary>
    public bool IsNew => _kind == Kind.New;

    /// <summary>Returns the position of the first retained message whose sequence is at least <paramref name="sequence"/>.</summary>
    /// <param name="sequence">A sequence, at least 1. If it is no longer retained, reading starts at the oldest retained message.</param>
    /// <returns>The position.</returns>
    public static StartPosition FromSequence(long sequence)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequence, 1);
        return new StartPosition(Kind.Sequence, sequence);
    }

    /// <summary>Returns the position of the first retained message published at or after <paramref name="time"/>.</summary>
    /// <param name="time">A point in time.</param>
    /// <returns>The position.</returns>
    public static StartPosition FromTime(DateTimeOffset time) => new(Kind.Time, time.UtcTicks);

    /// <summary>Whether a retained message is at or after this position.</summary>
    internal bool Includes(long sequence, long timestampTicks) => _kind switch
    {
        Kind.All => true,
        Kind.Sequence => sequence >= _value,
        Kind.Time => timestampTicks >= _value,
        _ => false,
    };

    /// <inheritdoc/>
    public bool Equals(StartPosition other) => _kind == other._kind && _value == other._value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is StartPosition other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_kind, _value);

    /// <summary>Compares two positions.</summary>
    /// <param name="left">The first position.</param>
    /// <param name="right">The second position.</param>
    /// <returns>Whether they are the same position.</returns>
    public static bool operator ==(StartPosition left, StartPosition right) => left.Equals(right);

    /// <summary>Compares two positions.</summary>
    /// <param name="left">The first position.</param>
    /// <param name="right">The second position.</param>
    /// <returns>Whether they differ.</returns>
    public static bool operator !=(StartPosition left, StartPosition right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => _kind switch
    {
        Kind.All => "All",
        Kind.Sequence => string.Create(CultureInfo.InvariantCulture, $"FromSequence({_value})"),
        Kind.Time => $"FromTime({new DateTimeOffset(_value, TimeSpan.Zero):O})",
        _ => "New",
    };
}
