using System.Diagnostics;

namespace MessageQueue.Persistence;

/// <summary>
/// Keeps at most <see cref="QueueOptions.MaxMessagesInMemory"/> of a durable queue's messages in memory. The rest stay in
/// the store: once the window is full, a committed message is not handed to the subscriptions ("spilled"), and the
/// pager reads the stored messages back, a page at a time and in sequence order, as consumers release the ones in memory.
/// </summary>
/// <remarks>
/// <para><b>One thread decides.</b> Whether a committed message goes into memory or stays in the store, and every read of
/// the store, happen on the store's writer thread: committed messages reach the queue there, in sequence order, and
/// reads run there between batches (<see cref="StoreWriter.TryRead"/>). So the messages in memory are always exactly the
/// unreleased ones up to <see cref="_readThrough"/> and the store holds every retained one after it: a read
/// never sees a message twice, and never misses one.</para>
/// <para><b>Counting.</b> <see cref="_inMemory"/> counts messages (not deliveries) from their hand-over until their last
/// holder lets go; consumers decrement it on any thread. The one that takes it to half the window, while messages wait
/// in the store, asks the writer for the next read. A spilled message keeps the room it took in the queue
/// (<see cref="QueueOptions.MaxMessages"/> counts every retained message), so reading it back admits nothing.</para>
/// <para><b>Order.</b> Every subscription gets the queue's messages in sequence order: those read back come after
/// everything already in memory and before anything published later, because nothing goes into memory past a spilled
/// message until the reads have caught up with the store. A replayed dead letter (sent to one subscription) waits its
/// turn too, and goes back to that subscription alone; so a durable subscription's stored read position never passes a
/// message it has not read, which is what a restart relies on to tell what was delivered.</para>
/// </remarks>
internal sealed class MessagePager<T> : IStoreReader
{
    private readonly BrokerQueue<T> _queue;
    private readonly StoreWriter _writer;
    private readonly int _window;
    private readonly int _lowWater;

    // Messages in memory: changed by the writer thread (up) and by consumers (down).
    private int _inMemory;

    // True while the store holds retained messages after _readThrough that are not in memory. Written by the writer thread.
    private volatile bool _paging;

    // 1 while a read is queued and has not started.
    private int _readQueued;

    // The writer thread's own: the last sequence in memory or read back, the first spilled in this broker's life (those
    // were already reported to the observer, 0 for none), the one subscription each replayed dead letter in the store
    // goes to, and whether reading failed (then nothing more is read, and everything retained stays in the store).
    private long _readThrough;
    private long _pagedOut; // retained messages in the store only: written by the writer thread, read by snapshots
    private long _firstSpilled;
    private Dictionary<long, SubscriptionState<T>>? _targets;
    private bool _failed;

    public MessagePager(BrokerQueue<T> queue, StoreWriter writer, int window)
    {
        Debug.Assert(window > 0);
        _queue = queue;
        _writer = writer;
        _window = window;
        _lowWater = window / 2;
    }

    /// <summary>Gets the messages in memory now.</summary>
    public int InMemory => Volatile.Read(ref _inMemory);

    /// <summary>Gets how many retained messages wait in the store only (the snapshot's PagedOut).</summary>
    public long PagedOut => Volatile.Read(ref _pagedOut);

    /// <summary>
    /// On the writer thread, a message was committed: whether it goes into memory now (true), or stays in the store to be
    /// read back later (false).
    /// </summary>
    /// <param name="sequence">Its sequence.</param>
    /// <param name="target">The one subscription it goes to (a replayed dead letter), or null for those it routes to.</param>
    public bool TakesCommitted(long sequence, SubscriptionState<T>? target)
    {
        Debug.Assert(StoreWriter.OnWriterThread, "on the writer thread");
        if (!_paging)
        {
            if (Volatile.Read(ref _inMemory) < _window)
            {
                _readThrough = sequence;
                return true;
            }

            _paging = true;

            // A consumer that took the count to the mark before it could see the flag asked for no read; the fence after
            // the flag and the one in Left make sure one of the two sees the other.
            Interlocked.MemoryBarrier();
        }

        // Every message kept in the store looks again (a volatile read): should a read request ever have been missed, the
        // next publish makes up for it.
        if (Volatile.Read(ref _inMemory) <= _lowWater)
        {
            RequestRead();
        }

        if (target is not null && !_failed)
        {
            // A replayed dead letter waits its turn like the others (going out at once would put it ahead of older messages
            // still in the store, and its subscription's read position past them); it goes back to its one subscription.
            (_targets ??= []).Add(sequence, target);
        }

        if (_firstSpilled == 0)
        {
            _firstSpilled = sequence;
        }

        Volatile.Write(ref _pagedOut, _pagedOut + 1);
        return false;
    }

    /// <summary>A message goes into memory: counted before its holders can see it. On the writer thread.</summary>
    public void Entered() => Interlocked.Increment(ref _inMemory);

    /// <summary>A message counted by <see cref="Entered"/> found no holder after all, and never was in memory. On the writer thread.</summary>
    public void NotEntered() => Interlocked.Decrement(ref _inMemory);

    /// <summary>The last holder of a message in memory let go of it. Any thread.</summary>
    public void Left()
    {
        // A full fence before the flag is read (see TakesCommitted).
        int left = Interlocked.Decrement(ref _inMemory);
        Debug.Assert(left >= 0, "left more often than entered");
        if (left <= _lowWater && _paging)
        {
            RequestRead();
        }
    }

    /// <summary>Queues a read on the writer thread, unless one is queued already.</summary>
    private void RequestRead()
    {
        if (Volatile.Read(ref _readQueued) == 0 && Interlocked.Exchange(ref _readQueued, 1) == 0 && !_writer.TryRead(this))
        {
            // The writer stopped or failed: nothing more will be read (the messages stay in the store).
            Volatile.Write(ref _readQueued, 0);
        }
    }

    /// <summary>
    /// Recovery, on the writer thread: the store holds the queue's messages, none of them in memory yet. Reads the first
    /// window back. A payload that cannot be read throws, so the queue's declaration fails and says why.
    /// </summary>
    /// <exception cref="MessageStoreException">The store failed, or a payload cannot be read as <typeparamref name="T"/>.</exception>
    public void Start(IPagedMessageStore store, long stored)
    {
        _pagedOut = stored;
        _paging = true;
        Fill(store);
    }

    /// <inheritdoc/>
    void IStoreReader.Read(IPagedMessageStore store)
    {
        // A consumer that takes the count to the mark from here on queues the next read. A full fence: the flag must be
        // clear before the count is read below, or a consumer could see it still set while this read sees the count too
        // high to read anything, and no read would follow.
        Interlocked.Exchange(ref _readQueued, 0);
        if (_failed)
        {
            return;
        }

        try
        {
            Fill(store);
        }
#pragma warning disable CA1031 // Whatever went wrong, reading on could admit part of a page twice; the queue stops reading, and says why.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            // Nothing is lost: what was not read stays in the store, and a restart reads it again.
            _failed = true;
            _targets = null;
            _queue.Events.PagingFailed(_queue.Name, exception);
        }
    }

    /// <inheritdoc/>
    void IStoreReader.Cancel(Exception reason)
    {
    }

    /// <summary>Reads pages until the window is full or the store holds nothing more after <see cref="_readThrough"/>.</summary>
    private void Fill(IPagedMessageStore store)
    {
        Debug.Assert(StoreWriter.OnWriterThread, "on the writer thread");
        while (_paging)
        {
            int room = _window - Volatile.Read(ref _inMemory);
            if (room <= 0)
            {
                return;
            }

            StoredQueueState page = store.ReadMessages(_queue.Name, _readThrough, room);
            IReadOnlyList<StoredMessage> messages = page.Messages;
            if (messages.Count > 0)
            {
                _queue.AdmitStored(page, notedFrom: _firstSpilled == 0 ? long.MaxValue : _firstSpilled, targets: _targets, pager: this);
                _readThrough = messages[^1].Sequence;
                Volatile.Write(ref _pagedOut, Math.Max(0, _pagedOut - messages.Count));
            }

            if (messages.Count < room)
            {
                // Caught up with the store: what is committed from now on goes straight into memory.
                _paging = false;
                _targets = null;
                Volatile.Write(ref _pagedOut, 0);
            }
        }
    }
}
