using System.Text.Json.Serialization;

namespace MessageQueue.Sqlite;

/// <summary>Source-generated JSON for what the store keeps as text: headers and subscription filters.</summary>
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(string[]))]
internal sealed partial class SqliteJsonContext : JsonSerializerContext;
