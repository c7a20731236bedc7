using System.Diagnostics;
using System.Numerics;

namespace MessageQueue.Persistence;

/// <summary>Told by the <see cref="StoreWriter"/> what became of an operation it posted.</summary>
internal interface IStoreCommitTarget
{
    /// <summary>The operation's batch was committed. Called on the writer thread, in posting order, under no lock.</summary>
    void OnCommitted(object? state);

    /// <summary>The operation will never be committed: the store failed. Called on the writer thread, under no lock.</summary>
    void OnFailed(object? state);
}

/// <summary>A read of the store that runs on the <see cref="StoreWriter"/>'s thread, between two batches.</summary>
internal interface IStoreReader
{
    /// <summary>Reads. Called on the writer thread, under no lock, after the callbacks of every batch committed before it.</summary>
    void Read(IPagedMessageStore store);

    /// <summary>The read will never run: the writer stopped, or the store failed.</summary>
    void Cancel(Exception reason);
}

/// <summary>
/// Group commit. Publishers and consumers post store operations from any thread; one writer thread takes
/// whatever has queued up since its last commit (up to a bound) and writes it as one batch, so that many
/// callers share one transaction and one flush. A caller that must know its operation is stored waits for
/// the commit of its ticket.
/// </summary>
/// <remarks>
/// Tickets are handed out under <see cref="_gate"/> in the order operations are queued, and batches are
/// taken from the front, so "ticket t is committed" means every operation posted before it is committed
/// too. After a failed write the writer stops for good: every waiter, and every later post, gets the error.
/// </remarks>
internal sealed class StoreWriter : IDisposable
{
    private readonly IMessageStore _store;
    private readonly int _maxBatch;
    private readonly Action? _beforeBatch;
    private readonly Lock _gate = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Thread _thread;

    // Under _gate.
    private List<Pending> _pending = [];
    private List<IStoreReader> _reads = [];
    private long _posted;
    private long _committed;
    private bool _idle;
    private bool _stopping;
    private MessageStoreException? _fault;

    // Completed (never faulted) after each commit or failure; waiters then look at _committed and _fault. Those three
    // change under _gate, and waiters read them without it (WaitSlowAsync).
    private TaskCompletionSource _nextCommit = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly record struct Pending(StoreOperation Operation, bool Flush, IStoreCommitTarget? Target, object? State);

    [ThreadStatic]
    private static bool t_onWriterThread;

    // Callbacks that threw (a broker bug): counted, and the writer goes on, because every later commit depends on it.
    private long _callbackFailures;

    private StoreOperation[] _operations = new StoreOperation[64]; // the writer thread's, reused by every batch

    /// <summary>Gets whether the calling thread is a store writer, which must never wait for a commit (its own).</summary>
    public static bool OnWriterThread => t_onWriterThread;

    /// <summary>Gets how many commit callbacks threw.</summary>
    public long CallbackFailures => Interlocked.Read(ref _callbackFailures);

    /// <param name="store">The store to write to.</param>
    /// <param name="maxBatch">The most operations in one commit.</param>
    /// <param name="beforeBatch">Called on the writer thread before each batch is written, to post what is cheaper to collect than to post one by one (cursors).</param>
    public StoreWriter(IMessageStore store, int maxBatch, Action? beforeBatch = null)
    {
        _store = store;
        _maxBatch = maxBatch;
        _beforeBatch = beforeBatch;
        _thread = new Thread(Run) { IsBackground = true, Name = "MessageQueue store writer" };
        _thread.Start();
    }

    /// <summary>Gets whether the store reads a queue's messages a page at a time (<see cref="IPagedMessageStore"/>).</summary>
    public bool ReadsPages => _store is IPagedMessageStore;

    /// <summary>Gets the error that stopped the writer, if it failed.</summary>
    public MessageStoreException? Fault
    {
        get
        {
            lock (_gate)
            {
                return _fault;
            }
        }
    }

    /// <summary>Queues an operation for the next commit.</summary>
    /// <returns>The operation's ticket, for <see cref="WaitForCommitAsync"/>.</returns>
    /// <exception cref="MessageStoreException">The writer failed earlier; nothing more is stored.</exception>
    public long Post(in StoreOperation operation, bool flush, IStoreCommitTarget? target = null, object? state = null)
    {
        lock (_gate)
        {
            if (_fault is not null)
            {
                throw Refused(_fault);
            }

            if (_stopping)
            {
                throw new ObjectDisposedException(nameof(Broker), "The broker is shutting down and writes nothing more to its store.");
            }

            return PostLocked(operation, flush, target, state);
        }
    }

    /// <summary>Queues an operation whose commit nobody waits for (a settlement). Dropped, unstored, once the writer has failed or stopped.</summary>
    /// <returns>False when it was dropped.</returns>
    public bool TryPost(in StoreOperation operation, bool flush, IStoreCommitTarget? target = null, object? state = null)
    {
        lock (_gate)
        {
            if (_fault is not null || _stopping)
            {
                return false;
            }

            PostLocked(operation, flush, target, state);
            return true;
        }
    }

    /// <summary>
    /// Queues a read of the store for the writer thread, which runs it before its next batch: after every batch committed
    /// so far, and their callbacks. Only a store that reads pages (<see cref="IPagedMessageStore"/>) is read this way.
    /// </summary>
    /// <returns>False when the writer has failed or stopped; the read will never run.</returns>
    public bool TryRead(IStoreReader reader)
    {
        Debug.Assert(_store is IPagedMessageStore, "only a paged store is read after the start");
        lock (_gate)
        {
            if (_fault is not null || _stopping)
            {
                return false;
            }

            _reads.Add(reader);
            WakeLocked();
            return true;
        }
    }

    /// <summary>
    /// Reads the store on the writer thread and waits for the result (a queue being declared reads its first page). Must
    /// not be called on the writer thread.
    /// </summary>
    /// <exception cref="MessageStoreException">The store failed, now or earlier.</exception>
    /// <exception cref="ObjectDisposedException">The broker is shutting down.</exception>
    public TResult Read<TResult>(Func<IPagedMessageStore, TResult> read)
    {
        Debug.Assert(!OnWriterThread, "the writer thread cannot wait for itself");
        var waiter = new ReadWaiter<TResult>(read);
        if (!TryRead(waiter))
        {
            MessageStoreException? fault = Fault;
            throw fault is not null ? Refused(fault) : new ObjectDisposedException(nameof(Broker), "The broker is shutting down and reads nothing more from its store.");
        }

        return waiter.Wait();
    }

    private sealed class ReadWaiter<TResult>(Func<IPagedMessageStore, TResult> read) : IStoreReader
    {
        private readonly TaskCompletionSource<TResult> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Read(IPagedMessageStore store)
        {
            try
            {
                _done.SetResult(read(store));
            }
#pragma warning disable CA1031 // Handed to the waiting thread, which throws it.
            catch (Exception exception)
#pragma warning restore CA1031
            {
                _done.SetException(exception);
            }
        }

        public void Cancel(Exception reason) => _done.TrySetException(reason);

        // The caller is never the writer thread, which completes the task; so blocking here cannot deadlock.
        public TResult Wait() => _done.Task.GetAwaiter().GetResult();
    }

    private long PostLocked(in StoreOperation operation, bool flush, IStoreCommitTarget? target, object? state)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread, "called with its lock held");
        _pending.Add(new Pending(operation, flush, target, state));
        WakeLocked();
        return ++_posted;
    }

    /// <summary>Wakes the writer thread if it is idle. Called with <see cref="_gate"/> held, after queuing work.</summary>
    private void WakeLocked()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread, "called with its lock held");
        if (_idle)
        {
            _idle = false;
            _wake.Set();
        }
    }

    /// <summary>Completes when the operation with <paramref name="ticket"/>, and everything posted before it, is committed.</summary>
    /// <exception cref="MessageStoreException">The store failed before committing it; it was not stored.</exception>
    public ValueTask WaitForCommitAsync(long ticket) =>
        Volatile.Read(ref _committed) >= ticket ? default : WaitSlowAsync(ticket);

    /// <summary>Completes when everything posted so far is committed.</summary>
    public ValueTask FlushAsync()
    {
        long ticket;
        lock (_gate)
        {
            ticket = _posted;
        }

        return WaitForCommitAsync(ticket);
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WaitSlowAsync(long ticket)
    {
        // Without the lock: every publish of a commit wakes here at once, and would otherwise queue up on it. The commit
        // task is read before the count, and the writer raises the count before it replaces the task, so a count read
        // after a task that was still current is never older than that task's commit: no commit is waited for twice.
        while (true)
        {
            Task next = Volatile.Read(ref _nextCommit).Task;
            if (Volatile.Read(ref _committed) >= ticket)
            {
                return;
            }

            if (Volatile.Read(ref _fault) is { } fault)
            {
                throw Refused(fault);
            }

            await next.ConfigureAwait(false);
        }
    }

    private static MessageStoreException Refused(MessageStoreException fault) => new(
        $"The message store failed earlier and the broker stores nothing more, so this was not stored: {fault.Message} Fix the cause (see the inner exception) and start the broker again.",
        fault);

    private void Run()
    {
        t_onWriterThread = true;
        var batch = new List<Pending>();
        var reads = new List<IStoreReader>();
        while (true)
        {
            _beforeBatch?.Invoke();
            lock (_gate)
            {
                (reads, _reads) = (_reads, reads);
            }

            // Reads go between batches: each sees what every earlier batch committed, after that batch's callbacks ran.
            foreach (IStoreReader reader in reads)
            {
                GuardedRead(reader);
            }

            reads.Clear();
            long last;
            lock (_gate)
            {
                if (_pending.Count == 0)
                {
                    if (_reads.Count > 0)
                    {
                        continue;
                    }

                    if (_stopping)
                    {
                        CancelReads(new ObjectDisposedException(nameof(Broker), "The broker is shutting down and reads nothing more from its store."));
                        return;
                    }

                    // Idle until a post sets the event; it is reset under the lock, so no post is missed.
                    _idle = true;
                    _wake.Reset();
                    last = -1;
                }
                else if (_pending.Count <= _maxBatch)
                {
                    (batch, _pending) = (_pending, batch);
                    last = _posted;
                }
                else
                {
                    batch.AddRange(_pending.GetRange(0, _maxBatch));
                    _pending.RemoveRange(0, _maxBatch);
                    last = _posted - _pending.Count;
                }
            }

            if (last < 0)
            {
                _wake.Wait();
                continue;
            }

            if (!WriteBatch(batch, last))
            {
                return;
            }

            batch.Clear();
        }
    }

    private bool WriteBatch(List<Pending> batch, long last)
    {
        // One array, reused by every batch (a store reads the operations only during Write): a fresh one per batch would
        // be a large-object allocation for batches of a thousand operations or more.
        if (_operations.Length < batch.Count)
        {
            _operations = new StoreOperation[(int)BitOperations.RoundUpToPowerOf2((uint)batch.Count)];
        }

        bool flush = false;
        for (int i = 0; i < batch.Count; i++)
        {
            _operations[i] = batch[i].Operation;
            flush |= batch[i].Flush;
        }

        try
        {
            _store.Write(new StoreBatch { Operations = new ArraySegment<StoreOperation>(_operations, 0, batch.Count), Flush = flush });
        }
#pragma warning disable CA1031 // Any failure of the store stops the writer and reaches every waiter.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            Fail(exception, batch);
            return false;
        }
        finally
        {
            Array.Clear(_operations, 0, batch.Count); // let the messages go
        }

        // In posting order: a queue's messages enter it in sequence order.
        foreach (Pending pending in batch)
        {
            if (pending.Target is { } target)
            {
                Guarded(target, pending.State, committed: true);
            }
        }

        TaskCompletionSource committed;
        lock (_gate)
        {
            Debug.Assert(last >= _committed, "tickets are committed in order");
            Volatile.Write(ref _committed, last); // before the task is replaced: waiters read them in the other order
            committed = _nextCommit;
            Volatile.Write(ref _nextCommit, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }

        committed.SetResult();
        return true;
    }

    private void GuardedRead(IStoreReader reader)
    {
        try
        {
            reader.Read((IPagedMessageStore)_store);
        }
#pragma warning disable CA1031 // A reader handles its own failures; one that throws anyway must not end the writer.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            Interlocked.Increment(ref _callbackFailures);
            Debug.Fail($"A store read threw: {exception}");
        }
    }

    /// <summary>Tells the reads still queued that they will never run. Called with <see cref="_gate"/> held, once nothing more can be queued.</summary>
    private void CancelReads(Exception reason)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread, "called with its lock held");
        foreach (IStoreReader reader in _reads)
        {
            reader.Cancel(reason);
        }

        _reads.Clear();
    }

    private void Fail(Exception exception, List<Pending> batch)
    {
        var fault = exception as MessageStoreException ?? new MessageStoreException(
            $"The message store failed to write a batch of {batch.Count} operation(s): {exception.Message}",
            exception);
        List<Pending> rest;
        TaskCompletionSource wake;
        lock (_gate)
        {
            Volatile.Write(ref _fault, fault);
            rest = _pending;
            _pending = [];
            wake = _nextCommit;
            CancelReads(Refused(fault));
        }

        foreach (Pending pending in batch.Concat(rest))
        {
            if (pending.Target is { } target)
            {
                Guarded(target, pending.State, committed: false);
            }
        }

        wake.SetResult();
    }

    private void Guarded(IStoreCommitTarget target, object? state, bool committed)
    {
        try
        {
            if (committed)
            {
                target.OnCommitted(state);
            }
            else
            {
                target.OnFailed(state);
            }
        }
#pragma warning disable CA1031 // An exception here would end the writer thread, and with it the process.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            Interlocked.Increment(ref _callbackFailures);
            Debug.Fail($"A store commit callback threw: {exception}");
        }
    }

    /// <summary>Writes what is queued, then stops the writer thread.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            _idle = false;
            _wake.Set();
        }

        _thread.Join();
        _wake.Dispose();
    }
}
