using System.Globalization;
using System.Text;

namespace MessageQueue;

/// <summary>
/// Writes the members of a snapshot record as the compiler's <c>ToString</c> does (<c>Name = value, …</c>), except that a
/// list prints its items (<c>Filters = [orders.*, audit.#]</c>, nested snapshots in full) instead of its type name.
/// Values are formatted with the invariant culture, so a logged snapshot reads the same on every machine.
/// </summary>
internal struct SnapshotPrinter(StringBuilder builder)
{
    private bool _any;

    /// <summary>True once a member was written: what a record's <c>PrintMembers</c> returns.</summary>
    public readonly bool Printed => _any;

    public void Member(string name, object? value)
    {
        Name(name);
        Value(builder, value);
    }

    public void List<T>(string name, IReadOnlyList<T>? items)
    {
        Name(name);
        if (items is null)
        {
            return; // as the compiler prints a null member: nothing after the '='
        }

        builder.Append('[');
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                builder.Append(", ");
            }

            Value(builder, items[i]);
        }

        builder.Append(']');
    }

    private void Name(string name)
    {
        if (_any)
        {
            builder.Append(", ");
        }

        _any = true;
        builder.Append(name).Append(" = ");
    }

    private static void Value(StringBuilder builder, object? value) =>
        builder.Append(value is IFormattable formattable ? formattable.ToString(null, CultureInfo.InvariantCulture) : value?.ToString());
}
