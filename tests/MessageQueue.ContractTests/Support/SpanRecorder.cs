using System.Diagnostics;

namespace MessageQueue.ContractTests.Support;

/// <summary>
/// Records the spans that stop on the given activity sources, for one queue (its <c>messaging.destination.name</c>).
/// Its ActivityListener is process-wide: a test class that uses one runs in a non-parallel collection, and disposes it.
/// </summary>
public sealed class SpanRecorder : IDisposable
{
    private readonly object _gate = new();
    private readonly List<Activity> _stopped = [];
    private readonly List<(Func<Activity, bool> Match, int Count, TaskCompletionSource Signal)> _waiters = [];
    private readonly ActivityListener _listener;

    /// <summary>Starts listening, sampling everything, to <paramref name="sources"/> (by default the library's own).</summary>
    /// <param name="queue">Only spans whose destination is this queue are kept; <see langword="null"/> keeps those of any queue and source.</param>
    /// <param name="sources">The activity sources to listen to.</param>
    public SpanRecorder(string? queue, params string[] sources)
    {
        string[] names = sources.Length == 0 ? ["MessageQueue"] : sources;
        _listener = new ActivityListener
        {
            ShouldListenTo = source => names.Contains(source.Name),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (queue is null || Equals(activity.GetTagItem("messaging.destination.name"), queue))
                {
                    Add(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>The spans stopped so far, in the order they stopped.</summary>
    public IReadOnlyList<Activity> Stopped
    {
        get
        {
            lock (_gate)
            {
                return [.. _stopped];
            }
        }
    }

    /// <summary>
    /// Completes once <paramref name="count"/> stopped spans match (all spans when <paramref name="match"/> is null). Spans stop on the handler's thread after its call returns, so a test waits for them by
    /// count, signalled per stop, never by time.
    /// </summary>
    public Task WaitFor(int count, Func<Activity, bool>? match = null)
    {
        Func<Activity, bool> matches = match ?? (static _ => true);
        lock (_gate)
        {
            if (_stopped.Count(matches) >= count)
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((matches, count, signal));
            return signal.Task.OrHang($"{count} spans");
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Add(Activity activity)
    {
        lock (_gate)
        {
            _stopped.Add(activity);
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_stopped.Count(_waiters[i].Match) >= _waiters[i].Count)
                {
                    _waiters[i].Signal.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }
}
