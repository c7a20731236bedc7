using MessageQueue.DependencyInjection;
using MessageQueue.Sqlite;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Selects the SQLite store for the broker that <c>AddMessageBroker</c> registers.</summary>
public static class SqliteMessageBrokerBuilderExtensions
{
    /// <summary>
    /// Keeps the broker's durable queues in the SQLite file at <paramref name="path"/>, created if it does not exist
    /// and read back when the broker is created (when the host starts). Queues are then durable by default
    /// (<see cref="MessageQueue.Durability.Committed"/>).
    /// </summary>
    /// <param name="builder">The broker builder.</param>
    /// <param name="path">The store file's path, for example <c>"broker.db"</c>.</param>
    /// <param name="configure">Sets further store options (such as <see cref="SqliteStoreOptions.MaxFileSize"/>), or <see langword="null"/>.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentException">The options are not valid (every problem is listed); checked here, at registration.</exception>
    public static MessageBrokerBuilder UseSqlite(this MessageBrokerBuilder builder, string path, Action<SqliteStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new SqliteStoreOptions { Path = path };
        configure?.Invoke(options);
        options.Validate(configure is null ? nameof(path) : nameof(configure));
        SqliteStoreOptions copy = options.Clone();
        return builder.UseStore(_ => new SqliteMessageStore(copy));
    }
}
