using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>One measurement, with its tags.</summary>
public sealed record Recorded(string Instrument, double Value, IReadOnlyDictionary<string, object?> Tags)
{
    public bool Has(string key, object? value) => Tags.TryGetValue(key, out object? tag) && Equals(tag, value);
}

/// <summary>
/// A <see cref="MeterListener"/> that records every measurement of the instruments of one meter scope (one broker, or
/// one IMeterFactory), so tests running side by side never see each other's measurements.
/// </summary>
public sealed class MetricRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<Recorded> _recorded = new();
    private readonly object _gate = new();
    private readonly List<(string Instrument, int Count, TaskCompletionSource Signal)> _waiters = [];

    public MetricRecorder(object scope, string meterName = "MessageQueue")
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, scope) && instrument.Meter.Name == meterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Add(instrument, value, tags));
        _listener.Start();
    }

    public IReadOnlyList<Recorded> All => [.. _recorded];

    public IReadOnlyList<Recorded> Of(string instrument) => [.. _recorded.Where(r => r.Instrument == instrument)];

    public double Sum(string instrument, params (string Key, object? Value)[] tags) =>
        Of(instrument).Where(r => tags.All(t => r.Has(t.Key, t.Value))).Sum(r => r.Value);

    /// <summary>Collects the observable gauges now; returns what they reported.</summary>
    public IReadOnlyList<Recorded> Observe(string instrument)
    {
        int before = _recorded.Count;
        _listener.RecordObservableInstruments();
        return [.. _recorded.Skip(before).Where(r => r.Instrument == instrument)];
    }

    /// <summary>Completes once <paramref name="instrument"/> has recorded <paramref name="count"/> measurements.</summary>
    public Task WaitFor(string instrument, int count)
    {
        lock (_gate)
        {
            if (Of(instrument).Count >= count)
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((instrument, count, signal));
            return signal.Task;
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            copy[tag.Key] = tag.Value;
        }

        lock (_gate)
        {
            _recorded.Enqueue(new Recorded(instrument.Name, value, copy));
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Instrument == instrument.Name && Of(instrument.Name).Count >= _waiters[i].Count)
                {
                    _waiters[i].Signal.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }
}
