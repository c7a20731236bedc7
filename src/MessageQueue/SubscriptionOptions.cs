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

    /// <summary>Gets or sets how long a delivery may stay unsettled after it was read before it is delivered again.</summary>
    /// <value>
    /// The default is <see cref="Timeout.InfiniteTimeSpan"/>: no deadline (a consumer that detaches still gives
    /// its deliveries back). When set, a delivery not settled in time goes back to the subscription and is
    /// delivered again with <see cref="Delivery{T}.Attempt"/> increased; settling the late one returns
    /// <see langword="false"/>. <see cref="Delivery{T}.ExtendAsync"/> restarts the deadline. Must be positive
    /// and at most about 24.8 days.
    /// </value>
    public TimeSpan AckTimeout { get; set; } = Timeout.InfiniteTimeSpan;

    /// <summary>Gets or sets how many times a message is delivered to this subscription before it is dead-lettered.</summary>
    /// <value>
    /// The default is 10. Must be at least 1. The final delivery has <see cref="Delivery{T}.IsLastAttempt"/>
    /// set; if it is nacked or times out too, the message goes to the dead-letter queue with the reason
    /// <see cref="DeadLetterReasons.MaxDeliveries"/>.
    /// </value>
    public int MaxDeliveries { get; set; } = 10;

    /// <summary>
    /// Gets or sets the backoff schedule: how long a nacked message waits before it is delivered again, by
    /// attempt. It applies to <see cref="Delivery{T}.NackAsync(CancellationToken)"/> and to handler
    /// exceptions; <see cref="Delivery{T}.NackAsync(TimeSpan, CancellationToken)"/> gives its own delay.
    /// </summary>
    /// <value>
    /// The default is 1 s, 5 s, 30 s: the first nack waits 1 s, the second 5 s, every later one 30 s. An
    /// empty list redelivers at once. While it waits, the message keeps its place: it still counts against
    /// <see cref="MaxInFlight"/>, so with <see cref="MaxInFlight"/> 1 nothing newer overtakes it.
    /// </value>
    public IList<TimeSpan> RedeliveryDelays { get; set; } = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)];

    /// <summary>Gets or sets where a new subscription starts reading.</summary>
    /// <value>
    /// The default is <see cref="StartPosition.New"/>: messages published from now on. Other positions need a queue
    /// with <see cref="RetentionPolicy.Limits"/> retention (or a dead-letter queue), which keeps messages for
    /// later subscribers. It applies when the subscription is created; a consumer reattaching to an existing
    /// durable subscription continues where that subscription is.
    /// </value>
    public StartPosition StartAt { get; set; }

    /// <summary>Gets or sets whether this consumer shares its durable subscription, and what it does if another consumer is active.</summary>
    /// <value>
    /// The default is <see cref="ExclusiveMode.None"/>: competing consumers. Any other mode needs a <see cref="Name"/>: an
    /// ephemeral subscription has one consumer of its own, so subscribing with an exclusive mode and no name is refused
    /// with <see cref="ArgumentException"/>.
    /// </value>
    public ExclusiveMode Exclusive { get; set; }

    /// <summary>
    /// Gets or sets the subscription's own bound: the most messages it lets wait for delivery (its backlog,
    /// not counting those in flight) before <see cref="BacklogOverflow"/> applies.
    /// </summary>
    /// <value>
    /// The default is 0: no bound of its own, and a slow subscription holds back publishers through the queue's
    /// <see cref="QueueOptions.MaxMessages"/> and <see cref="QueueOptions.Overflow"/>. With a bound below the queue's,
    /// a slow subscription loses messages (or is cut loose) instead, and the queue keeps room for the others.
    /// It applies when the subscription is created.
    /// </value>
    public int MaxBacklog { get; set; }

    /// <summary>Gets or sets what happens when the subscription's backlog passes <see cref="MaxBacklog"/>.</summary>
    /// <value>The default is <see cref="BacklogOverflowPolicy.DropOldest"/>.</value>
    public BacklogOverflowPolicy BacklogOverflow { get; set; }

    internal static SubscriptionOptions Default { get; } = new();

    internal SubscriptionOptions Clone() => new()
    {
        Name = Name,
        MaxInFlight = MaxInFlight,
        AutoAck = AutoAck,
        AckTimeout = AckTimeout,
        MaxDeliveries = MaxDeliveries,
        RedeliveryDelays = RedeliveryDelays is null ? null! : [.. RedeliveryDelays],
        StartAt = StartAt,
        Exclusive = Exclusive,
        MaxBacklog = MaxBacklog,
        BacklogOverflow = BacklogOverflow,
    };

    /// <summary>The delay before redelivering a message nacked on <paramref name="attempt"/>, from the schedule.</summary>
    internal TimeSpan RedeliveryDelay(int attempt) =>
        RedeliveryDelays.Count == 0 ? TimeSpan.Zero : RedeliveryDelays[Math.Min(attempt, RedeliveryDelays.Count) - 1];

    /// <summary>
    /// Throws when these options are invalid, naming every problem in one exception, as the broker does before it
    /// subscribes with them. For an implementation of <see cref="ISubscriber"/> on another transport, so that it refuses
    /// what the broker refuses; the broker checks its own input.
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range, or two options contradict each other; the message lists each problem.</exception>
    public void Validate() => Validate("options");

    internal void Validate(string paramName) => OptionsErrors.ThrowIfAny(GetErrors(), "SubscriptionOptions", paramName);

    /// <summary>Every problem with these options, or <see langword="null"/> when they are valid.</summary>
    internal List<string>? GetErrors()
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

        if (Timeouts.Describe(AckTimeout, nameof(AckTimeout), allowZero: false) is { } ackError)
        {
            (errors ??= []).Add(ackError);
        }

        if (!Enum.IsDefined(Exclusive))
        {
            (errors ??= []).Add($"Exclusive is {(int)Exclusive}, which is not an ExclusiveMode value; use None, Reject, Standby or TakeOver.");
        }
        else if (Exclusive != ExclusiveMode.None && Name is null)
        {
            // Refused rather than ignored: an ephemeral subscription has exactly one consumer, so the caller who asked
            // for exclusivity would otherwise believe another consumer is kept out (or waits as a standby) when none is.
            (errors ??= []).Add(
                $"Exclusive is {Exclusive}, but only a named (durable) subscription can be exclusive; an ephemeral one has its own single consumer. " +
                "Set SubscriptionOptions.Name to share one durable subscription exclusively, or leave Exclusive at None.");
        }

        if (MaxBacklog < 0)
        {
            (errors ??= []).Add($"MaxBacklog is {MaxBacklog}; it must be 0 (no bound of its own) or positive.");
        }

        if (!Enum.IsDefined(BacklogOverflow))
        {
            (errors ??= []).Add($"BacklogOverflow is {(int)BacklogOverflow}, which is not a BacklogOverflowPolicy value; use DropOldest or Disconnect.");
        }

        if (MaxDeliveries < 1)
        {
            (errors ??= []).Add($"MaxDeliveries is {MaxDeliveries}; it must be at least 1 (1 means no redelivery).");
        }

        if (RedeliveryDelays is null)
        {
            (errors ??= []).Add("RedeliveryDelays is null; use an empty list to redeliver at once.");
        }
        else
        {
            for (int i = 0; i < RedeliveryDelays.Count; i++)
            {
                TimeSpan delay = RedeliveryDelays[i];
                if (delay == Timeout.InfiniteTimeSpan)
                {
                    (errors ??= []).Add($"RedeliveryDelays[{i}] is infinite; a nacked message must come back. Use a finite delay.");
                }
                else if (Timeouts.Describe(delay, $"RedeliveryDelays[{i}]", allowZero: true) is { } delayError)
                {
                    (errors ??= []).Add(delayError);
                }
            }
        }

        return errors;
    }
}
