namespace MessageQueue.DependencyInjection.Tests.Support;

/// <summary>What a handler call saw: which handler, which message, in which scope, on which attempt.</summary>
public sealed record HandledCall(string Handler, int OrderId, Guid Scope, int Attempt);

/// <summary>Records handler calls and scope disposals; tests wait on counts, never on time.</summary>
public sealed class Recorder
{
    private readonly object _gate = new();
    private readonly List<HandledCall> _calls = [];
    private readonly List<Guid> _disposedScopes = [];
    private readonly List<(Func<bool> Done, TaskCompletionSource Signal)> _waiters = [];

    public IReadOnlyList<HandledCall> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    /// <summary>
    /// The disposed scopes a handler call ran in. The scope in which the host builds each handler once at start, to
    /// check that the container can, saw no call and is left out (see <see cref="DisposedScopesWithoutACall"/>).
    /// </summary>
    public IReadOnlyList<Guid> DisposedScopes
    {
        get
        {
            lock (_gate)
            {
                return [.. _disposedScopes.Where(HadACall)];
            }
        }
    }

    /// <summary>The disposed scopes no handler call ran in: those of the host's start-up check.</summary>
    public IReadOnlyList<Guid> DisposedScopesWithoutACall
    {
        get
        {
            lock (_gate)
            {
                return [.. _disposedScopes.Where(s => !HadACall(s))];
            }
        }
    }

    public void Record(HandledCall call)
    {
        lock (_gate)
        {
            _calls.Add(call);
            Signal();
        }
    }

    public void ScopeDisposed(Guid scope)
    {
        lock (_gate)
        {
            _disposedScopes.Add(scope);
            Signal();
        }
    }

    /// <summary>Completes once <paramref name="count"/> calls were recorded (for <paramref name="handler"/>, when given).</summary>
    public Task WaitForCalls(int count, string? handler = null) =>
        WaitUntil(() => _calls.Count(c => handler is null || c.Handler == handler) >= count);

    /// <summary>Completes once <paramref name="count"/> scopes that a handler call ran in were disposed.</summary>
    public Task WaitForDisposedScopes(int count) => WaitUntil(() => _disposedScopes.Count(HadACall) >= count);

    private bool HadACall(Guid scope) => _calls.Exists(c => c.Scope == scope);

    private Task WaitUntil(Func<bool> done)
    {
        lock (_gate)
        {
            if (done())
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((done, signal));
            return signal.Task;
        }
    }

    private void Signal()
    {
        for (int i = _waiters.Count - 1; i >= 0; i--)
        {
            if (_waiters[i].Done())
            {
                _waiters[i].Signal.TrySetResult();
                _waiters.RemoveAt(i);
            }
        }
    }
}

/// <summary>A scoped service, as a DbContext would be: one per message, disposed when the message is done.</summary>
public sealed class ScopedContext(Recorder recorder) : IDisposable
{
    public Guid Id { get; } = Guid.NewGuid();

    public void Dispose() => recorder.ScopeDisposed(Id);
}
