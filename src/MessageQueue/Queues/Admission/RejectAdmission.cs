namespace MessageQueue;

/// <summary><see cref="OverflowPolicy.Reject"/>: a publish into a full queue fails at once with <see cref="QueueFullException"/>.</summary>
internal sealed class RejectAdmission<T>(BrokerQueue<T> queue) : QueueAdmission<T>(queue)
{
    public override OverflowPolicy Policy => OverflowPolicy.Reject;

    public override bool TryMakeRoom(QueueRetention<T> retention) => false;

    public override ValueTask<PublishReceipt> WhenFullAsync(Draft<T> draft, TimeSpan timeout, CancellationToken cancellationToken) =>
        throw Queue.Full(waited: null);
}
