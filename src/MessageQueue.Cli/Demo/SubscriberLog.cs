namespace MessageQueue.Cli.Demo;

/// <summary>
/// What one demo subscriber did: every delivery it read and every ack the broker accepted. Readers
/// record from their own tasks while the scenario waits on <see cref="WhenAckedAsync"/>, so the
/// state sits behind a lock.
/// </summary>
internal sealed class SubscriberLog
{
    private readonly Lock _gate = new();
    private readonly HashSet<Guid> _received = [];
    private readonly HashSet<Guid> _acked = [];
    private readonly List<(int Target, TaskCompletionSource Reached)> _waiters = [];
    private int _deliveries;
    private int _laterAttempts;

    public SubscriberLog(string name, IReadOnlyList<string> filters, string? durableName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(filters);
        Name = name;
        Filters = filters;
        DurableName = durableName;
    }

    /// <summary>Gets the client name the subscriber connects with.</summary>
    public string Name { get; }

    /// <summary>Gets the filters it subscribes with.</summary>
    public IReadOnlyList<string> Filters { get; }

    /// <summary>Gets the durable subscription's name, or null for an ephemeral subscriber.</summary>
    public string? DurableName { get; }

    /// <summary>Gets the distinct message ids received so far.</summary>
    public IReadOnlySet<Guid> ReceivedIds
    {
        get
        {
            lock (_gate)
            {
                return new HashSet<Guid>(_received);
            }
        }
    }

    /// <summary>Gets the distinct message ids whose ack the broker accepted.</summary>
    public IReadOnlySet<Guid> AckedIds
    {
        get
        {
            lock (_gate)
            {
                return new HashSet<Guid>(_acked);
            }
        }
    }

    /// <summary>Gets how many deliveries were read, redeliveries included.</summary>
    public int Deliveries
    {
        get
        {
            lock (_gate)
            {
                return _deliveries;
            }
        }
    }

    /// <summary>Gets how many deliveries came with an attempt number above 1.</summary>
    public int LaterAttempts
    {
        get
        {
            lock (_gate)
            {
                return _laterAttempts;
            }
        }
    }

    /// <summary>Records a delivery that was read and, if <paramref name="acked"/>, acked.</summary>
    public void Record(Guid messageId, int attempt, bool acked)
    {
        List<TaskCompletionSource>? reached = null;
        lock (_gate)
        {
            _deliveries++;
            if (attempt > 1)
            {
                _laterAttempts++;
            }

            _received.Add(messageId);
            if (acked)
            {
                _acked.Add(messageId);
            }

            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_acked.Count >= _waiters[i].Target)
                {
                    (reached ??= []).Add(_waiters[i].Reached);
                    _waiters.RemoveAt(i);
                }
            }
        }

        // Completed outside the lock; the sources run their continuations asynchronously anyway.
        reached?.ForEach(static source => source.TrySetResult());
    }

    /// <summary>Records a delivery of <paramref name="delivery"/>'s message.</summary>
    public void Record<T>(Delivery<T> delivery, bool acked) => Record(delivery.Message.Id, delivery.Attempt, acked);

    /// <summary>Completes once at least <paramref name="count"/> distinct messages were acked.</summary>
    public Task WhenAckedAsync(int count)
    {
        lock (_gate)
        {
            if (_acked.Count >= count)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, reached));
            return reached.Task;
        }
    }
}
