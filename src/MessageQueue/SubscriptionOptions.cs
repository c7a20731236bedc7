namespace MessageQueue;

/// <summary>Options for one subscribe call.</summary>
/// <remarks>Values are copied when subscribing; changing this instance later has no effect.</remarks>
public sealed class SubscriptionOptions
{
    /// <summary>Gets or sets the name of a durable subscription.</summary>
    /// <value>
    /// The default is <see langword="null"/>: an ephemeral subscription that starts at new messages and ends
    /// with its consumer. With a name, the subscription is durable: it outlives its consumer, keeps
    /// collecting matching messages while no consumer is attached, and the next consumer with the same
    /// name catches up. Names follow the queue name grammar and are unique per queue.
    /// </value>
    public string? Name { get; set; }

    /// <summary>Gets or sets the most deliveries this consumer holds unsettled at once (the prefetch).</summary>
    /// <value>The default is 256. Must be at least 1. With 1, order is strict, redeliveries included.</value>
    public int MaxInFlight { get; set; } = 256;

    /// <summary>Gets or sets whether a delivery counts as acknowledged as soon as it is read.</summary>
    /// <value>
    /// The default is <see langword="false"/> (manual ack, at-least-once). With <see langword="true"/> delivery
    /// is at-most-once: a message that was read is never delivered again, even if its handler fails.
    /// </value>
    public bool AutoAck { get; set; }

    internal static SubscriptionOptions Default { get; } = new();

    internal SubscriptionOptions Clone() => new() { Name = Name, MaxInFlight = MaxInFlight, AutoAck = AutoAck };

    internal void Validate(string paramName)
    {
        List<string>? errors = null;
        if (MaxInFlight < 1)
        {
            (errors ??= []).Add($"MaxInFlight is {MaxInFlight}; it must be at least 1 (1 gives strict order).");
        }

        if (Name is not null && Names.DescribeInvalidName(Name, "Name") is { } nameError)
        {
            (errors ??= []).Add(nameError);
        }

        OptionsErrors.ThrowIfAny(errors, "SubscriptionOptions", paramName);
    }
}
