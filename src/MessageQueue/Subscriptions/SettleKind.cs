namespace MessageQueue;

/// <summary>How a delivery left a consumer's pending table, for its counters.</summary>
internal enum SettleKind
{
    /// <summary>Taken back by the broker (detach or shutdown); not a settlement.</summary>
    None,
    Ack,
    Nack,
    DeadLetter,
}
