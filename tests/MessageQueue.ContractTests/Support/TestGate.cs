namespace MessageQueue.ContractTests.Support;

/// <summary>
/// A gate a test holds closed while code under test (a handler, a store, a callback) waits at it, and opens when
/// the test has seen what it wanted to see. Disposing it opens it too, so declare it with <c>using</c> before the
/// subscription, host or broker whose code passes through it: whatever way the test ends, a failed assertion
/// included, the gate is open before that code is disposed, and the test fails with its own message instead of
/// hanging in a dispose that waits for a handler that waits for the gate.
/// </summary>
/// <remarks>
/// It also counts who came through, so that a test that asserts a handler was called waits for the call first:
/// <see cref="WaitForArrivals"/> for calls made so far, <see cref="WaitForInside"/> for calls waiting at the same
/// time. The gate's name appears in the report of a test that hangs (see <see cref="TestRun"/>).
/// </remarks>
public sealed class TestGate : IDisposable
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _lock = new();
    private readonly List<(Func<TestGate, bool> Reached, TaskCompletionSource Signal)> _waiters = [];
    private int _arrivals;
    private int _inside;
    private int _maxInside;

    /// <summary>Creates a closed gate named for the hang report, owned by the current test run.</summary>
    public TestGate(string name)
    {
        Name = name;
        TestRun.Current?.Track(this);
    }

    /// <summary>What the gate holds back, as a hang report names it.</summary>
    public string Name { get; }

    /// <summary>Whether the gate has been opened.</summary>
    public bool IsOpen => _open.Task.IsCompleted;

    /// <summary>How many times code has arrived at the gate, open or closed.</summary>
    public int Arrivals
    {
        get
        {
            lock (_lock)
            {
                return _arrivals;
            }
        }
    }

    /// <summary>How many callers are waiting at the gate right now.</summary>
    public int Inside
    {
        get
        {
            lock (_lock)
            {
                return _inside;
            }
        }
    }

    /// <summary>The most callers that were ever waiting at the gate at the same time.</summary>
    public int MaxInside
    {
        get
        {
            lock (_lock)
            {
                return _maxInside;
            }
        }
    }

    /// <summary>Opens the gate: every caller waiting passes, and later callers pass at once.</summary>
    public void Open() => _open.TrySetResult();

    /// <summary>Opens the gate (see the remarks on the type).</summary>
    public void Dispose() => Open();

    /// <summary>Waits at the gate until it opens or <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task PassAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _arrivals++;
            _inside++;
            _maxInside = Math.Max(_maxInside, _inside);
            SignalReachedLocked();
        }

        try
        {
            await _open.Task.WaitAsync(cancellationToken);
        }
        finally
        {
            lock (_lock)
            {
                _inside--;
            }
        }
    }

    /// <summary>Completes once code has arrived at the gate <paramref name="count"/> times in all.</summary>
    public Task WaitForArrivals(int count) => WaitFor(gate => gate._arrivals >= count);

    /// <summary>Completes once <paramref name="count"/> callers are waiting at the gate at the same time.</summary>
    public Task WaitForInside(int count) => WaitFor(gate => gate._inside >= count);

    private Task WaitFor(Func<TestGate, bool> reached)
    {
        lock (_lock)
        {
            if (reached(this))
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((reached, signal));
            return signal.Task;
        }
    }

    private void SignalReachedLocked()
    {
        for (int i = _waiters.Count - 1; i >= 0; i--)
        {
            if (_waiters[i].Reached(this))
            {
                _waiters[i].Signal.TrySetResult();
                _waiters.RemoveAt(i);
            }
        }
    }
}
