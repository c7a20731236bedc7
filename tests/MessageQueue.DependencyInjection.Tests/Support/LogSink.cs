using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MessageQueue.DependencyInjection.Tests.Support;

/// <summary>One logged entry, formatted.</summary>
public sealed record LogEntry(string Category, LogLevel Level, int EventId, string Message, Exception? Exception);

/// <summary>
/// A logging provider that keeps every entry in memory, so tests can assert what the hosted handlers logged.
/// It is a real <see cref="ILoggerProvider"/> plugged into the host's logging, not a stand-in for the host.
/// </summary>
public sealed class LogSink : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();

    public IReadOnlyList<LogEntry> Entries => [.. _entries];

    /// <summary>The hosted handlers' entries (category MessageQueue.Hosting) with this event id.</summary>
    public IEnumerable<LogEntry> WithEvent(int eventId) => _entries.Where(e => e.EventId == eventId && e.Category == "MessageQueue.Hosting");

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink._entries.Enqueue(new LogEntry(category, logLevel, eventId.Id, formatter(state, exception), exception));
    }
}
