using System.Threading.Tasks.Sources;

namespace MessageQueue;

/// <summary>Something readers wait on: a consumer's ring of deliveries.</summary>
internal interface IReadySource
{
    /// <summary>
    /// True when a waiting reader should stop waiting, with <paramref name="canRead"/> saying why:
    /// true for something to read, false for the end (completed and empty).
    /// </summary>
    bool IsReady(out bool canRead);
}

/// <summary>
/// The readers parked on one consumer, woken by the writer. The common case, one reader (a handler
/// loop, an <c>await foreach</c>), reuses one waiter and allocates nothing; more readers at once each
/// get a waiter of their own.
/// </summary>
/// <remarks>
/// The writer publishes an item and then, after a full fence, reads <see cref="IsArmed"/>; a reader
/// sets the flag with a full fence and then looks at the source again. Whichever goes second sees the
/// other, so no wake-up is lost, and a writer with nobody parked pays one fence and one read.
/// Continuations always run on the thread pool, never on the writer's thread (which holds the
/// subscription's lock).
/// </remarks>
internal sealed class ReadWaiters
{
    private readonly Lock _gate = new();
    private readonly Waiter _reusable;
    private readonly List<Waiter> _parked = new(1);
    private int _reusableInUse;
    private int _armed;

    public ReadWaiters() => _reusable = new Waiter(this);

    /// <summary>True while a reader may be parked. Read by the writer after a full fence.</summary>
    public bool IsArmed => Volatile.Read(ref _armed) != 0;

    /// <summary>Completes at once when <paramref name="source"/> is ready, or parks the caller until <see cref="Wake"/>.</summary>
    public ValueTask<bool> WaitAsync(IReadySource source, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Interlocked.Exchange(ref _armed, 1);
            if (source.IsReady(out bool canRead))
            {
                if (_parked.Count == 0)
                {
                    Volatile.Write(ref _armed, 0);
                }

                return new ValueTask<bool>(canRead);
            }

            Waiter waiter = Interlocked.Exchange(ref _reusableInUse, 1) == 0 ? _reusable : new Waiter(this);
            waiter.Prepare();
            _parked.Add(waiter);

            // Under the lock, so that no wake-up completes the wait before its registration is kept.
            // A token cancelled by now runs the callback right here (the lock lets the same thread in again).
            waiter.Register(cancellationToken);
            return new ValueTask<bool>(waiter, waiter.Version);
        }
    }

    /// <summary>Wakes every parked reader with <paramref name="canRead"/>.</summary>
    public void Wake(bool canRead)
    {
        lock (_gate)
        {
            Volatile.Write(ref _armed, 0);
            foreach (Waiter waiter in _parked)
            {
                waiter.TryComplete(canRead);
            }

            _parked.Clear();
        }
    }

    private void Cancelled(Waiter waiter)
    {
        lock (_gate)
        {
            _parked.Remove(waiter);
            if (_parked.Count == 0)
            {
                Volatile.Write(ref _armed, 0);
            }
        }
    }

    private void Returned(Waiter waiter)
    {
        if (ReferenceEquals(waiter, _reusable))
        {
            Volatile.Write(ref _reusableInUse, 0);
        }
    }

    /// <summary>
    /// One parked reader: a reusable value-task source that completes once per wait. Completing it queues
    /// the waiter itself to the thread pool's global queue (no allocation), and the reader's continuation
    /// runs there: never on the waking thread, and never stuck behind a busy waker's local queue.
    /// </summary>
    private sealed class Waiter(ReadWaiters owner) : IValueTaskSource<bool>, IThreadPoolWorkItem
    {
        private ManualResetValueTaskSourceCore<bool> _core; // continuations run inline, in Execute
        private CancellationTokenRegistration _registration;
        private int _completed;
        private bool _canRead;
        private Exception? _error;

        public short Version => _core.Version;

        public void Prepare() => Volatile.Write(ref _completed, 0);

        public void Register(CancellationToken cancellationToken)
        {
            if (cancellationToken.CanBeCanceled)
            {
                _registration = cancellationToken.UnsafeRegister(
                    static (state, token) => ((Waiter)state!).OnCancelled(token), this);
            }
        }

        /// <summary>Completes the wait unless a cancellation got there first.</summary>
        public void TryComplete(bool canRead)
        {
            if (Interlocked.Exchange(ref _completed, 1) == 0)
            {
                _canRead = canRead;
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            }
        }

        private void OnCancelled(CancellationToken cancellationToken)
        {
            if (Interlocked.Exchange(ref _completed, 1) == 0)
            {
                owner.Cancelled(this);
                _error = new OperationCanceledException(cancellationToken);
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            }
        }

        void IThreadPoolWorkItem.Execute()
        {
            if (_error is { } error)
            {
                _error = null;
                _core.SetException(error);
            }
            else
            {
                _core.SetResult(_canRead);
            }
        }

        public bool GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                _registration.Dispose();
                _registration = default;
                _core.Reset();
                owner.Returned(this);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
