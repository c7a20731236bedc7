namespace MessageQueue;

/// <summary>Deduplication: publishes that carry a MessageId, on a queue with a DeduplicationWindow.</summary>
internal sealed partial class BrokerQueue<T>
{
    private readonly Deduplication? _deduplication;
    private long _deduplicated;

    /// <summary>
    /// Publishes unless the id was published within the window; a duplicate gets the first publish's
    /// receipt. Two publishes of one id at the same moment: the second waits for the first's outcome,
    /// and publishes itself only if the first failed.
    /// </summary>
    private async ValueTask<PublishReceipt> PublishOnceAsync(Draft<T> draft, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Deduplication deduplication = _deduplication!;
        while (true)
        {
            Deduplication.Claim claim = deduplication.TryClaim(draft.Id, out PublishReceipt earlier, out Task<PublishReceipt?>? inFlight);
            if (claim == Deduplication.Claim.Duplicate)
            {
                Interlocked.Increment(ref _deduplicated);
                return earlier;
            }

            if (claim == Deduplication.Claim.InFlight)
            {
                if (await inFlight!.WaitAsync(cancellationToken).ConfigureAwait(false) is { } receipt)
                {
                    Interlocked.Increment(ref _deduplicated);
                    return receipt;
                }

                continue; // the first publish failed; try again ourselves
            }

            try
            {
                PublishReceipt receipt = await PublishAsync(draft, timeout, cancellationToken).ConfigureAwait(false);
                deduplication.Complete(draft.Id, receipt);
                return receipt;
            }
            catch
            {
                deduplication.Abandon(draft.Id);
                throw;
            }
        }
    }

    /// <summary>
    /// TryPublish with an id: never waits, so a publish of the same id that is still in progress makes it
    /// return false (documented on <see cref="PublishOptions.MessageId"/>).
    /// </summary>
    private bool TryPublishOnce(in Draft<T> draft, out PublishReceipt receipt)
    {
        Deduplication deduplication = _deduplication!;
        switch (deduplication.TryClaim(draft.Id, out receipt, out _))
        {
            case Deduplication.Claim.Duplicate:
                Interlocked.Increment(ref _deduplicated);
                return true;
            case Deduplication.Claim.InFlight:
                receipt = default;
                return false;
        }

        bool published;
        try
        {
            published = TryPublishNow(draft, out receipt, out _);
        }
        catch
        {
            deduplication.Abandon(draft.Id);
            throw;
        }

        if (published)
        {
            deduplication.Complete(draft.Id, receipt);
        }
        else
        {
            deduplication.Abandon(draft.Id);
        }

        return published;
    }
}
