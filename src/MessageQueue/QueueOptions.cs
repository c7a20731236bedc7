using System.Globalization;

namespace MessageQueue;

/// <summary>Options for one queue, given to <see cref="Broker.DeclareQueue{T}(string, QueueOptions?)"/>.</summary>
/// <remarks>Values are copied when the queue is declared; changing this instance later has no effect.</remarks>
public sealed class QueueOptions
{
    /// <summary>Gets or sets the most messages the queue retains at once.</summary>
    /// <value>The default is 10 000. Must be at least 1.</value>
    /// <remarks>
    /// A message is retained from its publish until every subscription that matched it has settled it
    /// (interest retention), including while it is in flight with a consumer.
    /// </remarks>
    public int MaxMessages { get; set; } = 10_000;

    /// <summary>Gets or sets what a publish does when the queue is full.</summary>
    /// <value>The default is <see cref="OverflowPolicy.Wait"/>.</value>
    public OverflowPolicy Overflow { get; set; } = OverflowPolicy.Wait;

    /// <summary>Gets or sets how long a publish waits for room under <see cref="OverflowPolicy.Wait"/>.</summary>
    /// <value>The default is 30 seconds. Must be positive and at most about 24.8 days, or <see cref="Timeout.InfiniteTimeSpan"/>.</value>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(30);

    internal QueueOptions Clone() => new()
    {
        MaxMessages = MaxMessages,
        Overflow = Overflow,
        PublishTimeout = PublishTimeout,
    };

    internal bool SameAs(QueueOptions other) =>
        MaxMessages == other.MaxMessages && Overflow == other.Overflow && PublishTimeout == other.PublishTimeout;

    /// <summary>Checks every option and throws one exception that lists every problem.</summary>
    internal void Validate(string paramName)
    {
        List<string>? errors = null;
        if (MaxMessages < 1)
        {
            (errors ??= []).Add($"MaxMessages is {MaxMessages}; it must be at least 1.");
        }

        if (!Enum.IsDefined(Overflow))
        {
            (errors ??= []).Add($"Overflow is {(int)Overflow}, which is not an OverflowPolicy value; use Wait, Reject or DropOldest.");
        }

        if (Timeouts.Describe(PublishTimeout, nameof(PublishTimeout), allowZero: false) is { } timeoutError)
        {
            (errors ??= []).Add(timeoutError);
        }

        OptionsErrors.ThrowIfAny(errors, "QueueOptions", paramName);
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"MaxMessages={MaxMessages}, Overflow={Overflow}, PublishTimeout={PublishTimeout}");
}
