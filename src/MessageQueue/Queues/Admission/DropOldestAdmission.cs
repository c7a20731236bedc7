using System.Diagnostics;

namespace MessageQueue;

/// <summary>
/// <see cref="OverflowPolicy.DropOldest"/>: a publish into a full queue drops the oldest message still waiting for
/// delivery to make room, by the retention's own rule (<see cref="QueueRetention{T}.MakeRoomByEvicting"/>). It never
/// waits and never fails for lack of room.
/// </summary>
internal sealed class DropOldestAdmission<T>(BrokerQueue<T> queue) : QueueAdmission<T>(queue)
{
    public override OverflowPolicy Policy => OverflowPolicy.DropOldest;

    public override bool TryMakeRoom(QueueRetention<T> retention)
    {
        retention.MakeRoomByEvicting();
        return true;
    }

    public override ValueTask<PublishReceipt> WhenFullAsync(Draft<T> draft, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Debug.Fail("DropOldest always makes room, so a publish never finds the queue full");
        throw Queue.Full(waited: null);
    }
}
