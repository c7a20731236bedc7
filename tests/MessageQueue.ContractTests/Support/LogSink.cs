using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MessageQueue.ContractTests.Support;

/// <summary>One logged entry, formatted.</summary>
public sealed record LogEntry(string Category, LogLevel Level, int EventId, string Message, Exception? Exception);

/// <summary>
/// A logging provider that keeps every entry in memory, so tests can assert what the hosted handlers logged.
/// It is a real <see cref="ILoggerProvider"/> plugged into the host's logging, not a stand-in for the host.
/// </summary>
public sealed class LogSink : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();
    private readonly object _gate = new();
    private readonly List<(int EventId, int Count, TaskCompletionSource<LogEntry> Signal)> _waiters = [];

    public IReadOnlyList<LogEntry> Entries => [.. _entries];

    /// <summary>The library's entries (categories MessageQueue and MessageQueue.*) with this event id.</summary>
    public IEnumerable<LogEntry> WithEvent(int eventId) => _entries.Where(e => e.EventId == eventId && IsLibrary(e.Category));

    /// <summary>Completes with the first library entry with this event id, logged before or after the call.</summary>
    public Task<LogEntry> WaitForEvent(int eventId) => WaitForEvent(eventId, 1);

    /// <summary>
    /// Completes with the <paramref name="count"/>th library entry with this event id, logged before or after the call.
    /// </summary>
    public Task<LogEntry> WaitForEvent(int eventId, int count)
    {
        lock (_gate)
        {
            if (WithEvent(eventId).Skip(count - 1).FirstOrDefault() is { } logged)
            {
                return Task.FromResult(logged);
            }

            var signal = new TaskCompletionSource<LogEntry>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((eventId, count, signal));
            return signal.Task;
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    private static bool IsLibrary(string category) => category == "MessageQueue" || category.StartsWith("MessageQueue.", StringComparison.Ordinal);

    private void Add(LogEntry entry)
    {
        lock (_gate)
        {
            _entries.Enqueue(entry);
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (IsLibrary(entry.Category) && _waiters[i].EventId == entry.EventId && WithEvent(entry.EventId).Count() >= _waiters[i].Count)
                {
                    _waiters[i].Signal.TrySetResult(entry);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    public void Dispose()
    {
    }

    private sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink.Add(new LogEntry(category, logLevel, eventId.Id, formatter(state, exception), exception));
    }
}
