using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// A queue's depth under interest retention: how many routed messages are admitted and not yet
/// released by every subscription. Publishers count admissions, consumers count releases, each on
/// its own cache line; depth is the difference.
/// </summary>
/// <remarks>
/// A publisher compares against a cached copy of the release count and re-reads the real one only
/// when the cached copy says the queue is full. Releases only grow, so a stale copy can only
/// overstate the depth, never let the bound be crossed; and in steady state, with room to spare,
/// publishers never touch the consumers' cache line.
/// </remarks>
internal sealed class DepthGauge
{
    private readonly long _max;
    private PaddedCounter _admitted;
    private PaddedCounter _released;

    // Publisher side: the last release count a publisher read. Races between publishers are benign
    // (any value it holds was true at some point, so it is never too high).
    private PaddedCounter _releasedSeen;

    public DepthGauge(int max) => _max = max;

    public int Depth => (int)(Volatile.Read(ref _admitted.Value) - Volatile.Read(ref _released.Value));

    public bool HasRoom()
    {
        long released = Volatile.Read(ref _released.Value);
        return Volatile.Read(ref _admitted.Value) - released < _max;
    }

    /// <summary>Takes one unit of depth if the queue has room.</summary>
    public bool TryAdmit()
    {
        while (true)
        {
            long admitted = Volatile.Read(ref _admitted.Value);
            if (admitted - Volatile.Read(ref _releasedSeen.Value) >= _max)
            {
                long released = Volatile.Read(ref _released.Value);
                Volatile.Write(ref _releasedSeen.Value, released);
                if (admitted - released >= _max)
                {
                    return false;
                }
            }

            if (Interlocked.CompareExchange(ref _admitted.Value, admitted + 1, admitted) == admitted)
            {
                return true;
            }
        }
    }

    /// <summary>Takes one unit of depth even past the bound (DropOldest when nothing can be dropped).</summary>
    public void ForceAdmit() => Interlocked.Increment(ref _admitted.Value);

    /// <summary>Frees one unit of depth. A full fence: callers read the waiter count after it.</summary>
    public void Release()
    {
        long released = Interlocked.Increment(ref _released.Value);
        Debug.Assert(released <= Volatile.Read(ref _admitted.Value), "released more than admitted");
    }
}
