using System.Globalization;

namespace MessageQueue.Sqlite;

/// <summary>Options for a <see cref="SqliteMessageStore"/>.</summary>
/// <remarks>Values are copied when the store is created; changing this instance later has no effect.</remarks>
public sealed class SqliteStoreOptions
{
    /// <summary>Gets or sets the store file's path. It is created if it does not exist.</summary>
    /// <value>No default; required.</value>
    public string Path { get; set; } = string.Empty;

    /// <summary>Gets or sets the largest the store file may grow, in bytes.</summary>
    /// <value>
    /// The default is <see langword="null"/>: no limit but the disk. At the limit a write fails as on a full disk:
    /// the publishes in that commit throw <see cref="MessageStoreException"/> and are not stored. At least 64 KiB.
    /// </value>
    public long? MaxFileSize { get; set; }

    internal SqliteStoreOptions Clone() => new() { Path = Path, MaxFileSize = MaxFileSize };

    internal void Validate(string paramName)
    {
        List<string>? errors = null;
        if (string.IsNullOrWhiteSpace(Path))
        {
            (errors ??= []).Add("Path is empty; give the store file's path, for example \"broker.db\".");
        }

        if (MaxFileSize is { } size && size < 64 * 1024)
        {
            (errors ??= []).Add(string.Create(CultureInfo.InvariantCulture, $"MaxFileSize is {size} bytes; it must be at least 65536 (64 KiB), or null for no limit."));
        }

        if (errors is not null)
        {
            throw new ArgumentException($"SqliteStoreOptions are not valid: {string.Join(" ", errors)}", paramName);
        }
    }
}
