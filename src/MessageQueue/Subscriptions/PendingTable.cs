using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace MessageQueue;

/// <summary>
/// The deliveries one consumer has read and not settled (its pending-ack table), and what it settled so far. Every
/// member is called under the consumer's table lock.
/// </summary>
/// <remarks>
/// <para><b>Slots and tokens.</b> A slot array with a free list. A delivery's token is the slot index plus the slot's
/// generation, which changes every time the slot is freed or its delivery is nacked; a token whose generation no longer
/// matches is a delivery that was already settled or taken back, and settling it again is a harmless no-op. Nothing is
/// allocated per delivery: the slot array grows by doubling up to MaxInFlight and is reused.</para>
/// <para><b>Checked.</b> In a Debug build every change ends with <see cref="AssertInvariants"/>, so the stress tests,
/// run in Debug, check the table after every operation.</para>
/// <para><b>Parked slots.</b> A nacked delivery with a backoff keeps its slot, and so its place and its share of
/// MaxInFlight, until its redelivery is due; no reader holds it, and its token is stale from the nack on.</para>
/// </remarks>
internal sealed class PendingTable<T>
{
    private readonly Lock _gate;
    private readonly int _maxSlots;
    private Slot[] _slots;
    private int[] _free;
    private int _freeCount;
    private int _parked; // written under the lock, read without it (the drain check)

    /// <summary>What the consumer settled, by kind. Changed under the table lock.</summary>
    public ConsumerCounters Counters;

    /// <param name="tableGate">The consumer's table lock, which every caller holds.</param>
    /// <param name="maxSlots">MaxInFlight: at most this many deliveries are read and unsettled.</param>
    /// <param name="initialSlots">How many slots to start with.</param>
    public PendingTable(Lock tableGate, int maxSlots, int initialSlots)
    {
        _gate = tableGate;
        _maxSlots = maxSlots;
        _slots = new Slot[initialSlots];
        _free = new int[initialSlots];
        for (int i = 0; i < initialSlots; i++)
        {
            _free[i] = initialSlots - 1 - i;
        }

        _freeCount = initialSlots;
    }

    /// <summary>One read delivery, or a free slot (no message).</summary>
    public struct Slot
    {
        public Message<T>? Message;
        public int Attempt;
        public int Generation;
        public long ReadAt;
        public long Due;       // 0: none; otherwise the ack deadline, or the end of the backoff when Waiting
        public bool Waiting;   // nacked, waiting out its backoff before it goes back to the subscription
        public DeliveryHistory? History;
    }

    /// <summary>The number of slots, used or free; for walking them with <see cref="At"/>.</summary>
    public int Capacity => _slots.Length;

    /// <summary>Slots waiting out a nack's backoff. Read without the lock.</summary>
    public int Parked => Volatile.Read(ref _parked);

    /// <summary>The slot at <paramref name="index"/>, to read or change in place.</summary>
    public ref Slot At(int index) => ref _slots[index];

    /// <summary>Enters a read delivery and returns its token.</summary>
    public long Add(Message<T> message, int attempt, long readAt, long due, DeliveryHistory? history)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        if (_freeCount == 0)
        {
            Grow();
        }

        int index = _free[--_freeCount];
        ref Slot slot = ref _slots[index];
        slot.Message = message;
        slot.Attempt = attempt;
        slot.ReadAt = readAt;
        slot.Waiting = false;
        slot.History = history;
        slot.Due = due;
        AssertInvariants();
        return ((long)slot.Generation << 32) | (uint)index;
    }

    /// <summary>Finds the slot of a pending delivery. A waiting (nacked) slot has moved on to a new generation.</summary>
    public bool TryFind(long token, out int index)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        index = (int)token;
        int generation = (int)(token >>> 32);
        Slot[] slots = _slots;
        return (uint)index < (uint)slots.Length
            && slots[index].Generation == generation
            && slots[index].Message is not null
            && !slots[index].Waiting;
    }

    /// <summary>
    /// Takes an acked delivery out and counts the ack. False when the token is stale: the delivery was settled already,
    /// nacked, timed out, or taken back when the consumer detached.
    /// </summary>
    public bool TryTakeForAck(long token, [NotNullWhen(true)] out Message<T>? message, out int attempt)
    {
        if (!TryFind(token, out int index))
        {
            message = null;
            attempt = 0;
            return false;
        }

        // Lean on purpose (the ack path): only what a later read or a stale token checks is reset.
        ref Slot slot = ref _slots[index];
        message = slot.Message!;
        attempt = slot.Attempt;
        slot.Message = null;
        slot.History = null;
        slot.Due = 0;
        slot.Generation++;
        _free[_freeCount++] = index;
        Counters.Acked++;
        AssertInvariants();
        return true;
    }

    /// <summary>
    /// Empties a slot. With <paramref name="recordDelivery"/> the delivery goes into the message's history (it failed:
    /// timed out, rejected, or taken back on detach); a slot waiting out a backoff was recorded when it was nacked.
    /// </summary>
    /// <param name="index">The slot.</param>
    /// <param name="recordDelivery">Whether to record this delivery in the message's history.</param>
    /// <param name="now">A timestamp of the consumer's clock, for a delivery whose read time was not kept.</param>
    /// <param name="wasParked">Whether the slot was waiting out a backoff.</param>
    public Consumer<T>.Unsettled Free(int index, bool recordDelivery, long now, out bool wasParked)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        ref Slot slot = ref _slots[index];
        Debug.Assert(slot.Message is not null, "only a used slot is freed");
        wasParked = slot.Waiting;
        if (wasParked)
        {
            Volatile.Write(ref _parked, _parked - 1);
        }

        DeliveryHistory? history = recordDelivery && !slot.Waiting ? DeliveryHistory.Record(slot.History, DeliveredAt(slot, now), error: null) : slot.History;
        var freed = new Consumer<T>.Unsettled(slot.Message!, slot.Attempt, history);
        slot = new Slot { Generation = slot.Generation + 1 };
        _free[_freeCount++] = index;
        AssertInvariants();
        return freed;
    }

    /// <summary>A nack with a backoff: the slot keeps the delivery until <paramref name="due"/>, under a new generation, so its token goes stale.</summary>
    public void Park(int index, long due)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        ref Slot slot = ref _slots[index];
        Debug.Assert(slot.Message is not null && !slot.Waiting);
        slot.Generation++;
        slot.Waiting = true;
        slot.Due = due;
        Volatile.Write(ref _parked, _parked + 1);
        AssertInvariants();
    }

    /// <summary>When a delivery was read, or, without an ack deadline (no read time kept), the time it failed.</summary>
    public static long DeliveredAt(in Slot slot, long now) => slot.ReadAt != 0 ? slot.ReadAt : now;

    private void Grow()
    {
        int size = _slots.Length;
        int grown = (int)Math.Min((long)size * 2, _maxSlots);
        Debug.Assert(grown > size, "at most MaxInFlight deliveries are read and unsettled");
        Array.Resize(ref _slots, grown);
        Array.Resize(ref _free, grown);
        for (int i = grown - 1; i >= size; i--)
        {
            _free[_freeCount++] = i;
        }
    }

    /// <summary>
    /// Checks the table against itself: every slot is either free (no message, listed once in the free list) or used
    /// (a message, not listed), and the parked count is the number of waiting slots. Called under the table lock.
    /// </summary>
    [Conditional("DEBUG")]
    public void AssertInvariants()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        var listed = new bool[_slots.Length];
        for (int i = 0; i < _freeCount; i++)
        {
            int index = _free[i];
            Debug.Assert(!listed[index], "a slot is in the free list once");
            Debug.Assert(_slots[index].Message is null, "a free slot holds no message");
            listed[index] = true;
        }

        int used = 0, waiting = 0;
        for (int i = 0; i < _slots.Length; i++)
        {
            if (_slots[i].Message is not null)
            {
                used++;
                waiting += _slots[i].Waiting ? 1 : 0;
                Debug.Assert(!listed[i], "a used slot is not in the free list");
            }
        }

        Debug.Assert(used + _freeCount == _slots.Length, "every slot is used or free");
        Debug.Assert(waiting == _parked, "the parked count is the number of waiting slots");
        Debug.Assert(_slots.Length <= Math.Max(_maxSlots, 1), "the table never outgrows MaxInFlight");
    }
}
