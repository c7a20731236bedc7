using System.Globalization;

namespace MessageQueue.Testing;

/// <summary>
/// An <see cref="IPublisher"/> with no broker behind it, for unit tests of code that only publishes. It checks names as the
/// broker does, records every message it accepts, and can be told to fail, so that your error paths get tested too.
/// </summary>
/// <example>
/// <code>
/// var publisher = new RecordingPublisher();
/// var checkout = new Checkout(publisher);          // your code, which takes an IPublisher
///
/// await checkout.PlaceAsync(new Order(7));
/// publisher.Messages.ForEvent("order.created").Payloads&lt;Order&gt;().Should().Equal(new Order(7));
///
/// publisher.FailWith(new QueueFullException("orders", "Queue 'orders' is full.", null));
/// await checkout.Invoking(c => c.PlaceAsync(new Order(8))).Should().ThrowAsync&lt;QueueFullException&gt;();
/// </code>
/// </example>
public sealed class RecordingPublisher : IPublisher
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly List<MessageRecord> _messages = [];
    private readonly Dictionary<string, long> _sequences = new(StringComparer.Ordinal);
    private Func<MessageRecord, Exception?>? _failure;
    private int _failNext;
    private int _failed;

    /// <summary>Creates a publisher that stamps its records with the system clock.</summary>
    public RecordingPublisher()
        : this(TimeProvider.System)
    {
    }

    /// <summary>Creates a publisher that stamps its records (<see cref="MessageRecord.Time"/>) with <paramref name="timeProvider"/>.</summary>
    /// <param name="timeProvider">The clock, such as the <see cref="ManualTimeProvider"/> your test drives.</param>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    public RecordingPublisher(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        _time = timeProvider;
    }

    /// <summary>
    /// Gets the messages published so far, in order (not the ones that were made to fail): one
    /// <see cref="MessageRecordKind.Published"/> record each, narrowed down as a <see cref="BrokerTestHarness"/>'s are
    /// (<c>publisher.Messages.ForQueue("orders").Payloads&lt;Order&gt;()</c>).
    /// </summary>
    public MessageRecords Messages
    {
        get
        {
            lock (_gate)
            {
                return new MessageRecords([.. _messages]);
            }
        }
    }

    /// <summary>Gets how many publishes were made to fail.</summary>
    public int FailedCount
    {
        get
        {
            lock (_gate)
            {
                return _failed;
            }
        }
    }

    /// <summary>The payloads published to <paramref name="queue"/>, optionally only those with event <paramref name="eventName"/>, typed.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="queue">The queue.</param>
    /// <param name="eventName">The exact event name, or <see langword="null"/> for every event.</param>
    /// <returns>The payloads, in publish order.</returns>
    /// <exception cref="InvalidCastException">A payload published there is not a <typeparamref name="T"/>.</exception>
    public IReadOnlyList<T> Payloads<T>(string queue, string? eventName = null)
    {
        MessageRecords published = Messages.ForQueue(queue);
        return (eventName is null ? published : published.Where(r => string.Equals(r.Event, eventName, StringComparison.Ordinal))).Payloads<T>();
    }

    /// <summary>Makes every following publish throw <paramref name="exception"/>, until <see cref="Succeed"/>.</summary>
    /// <param name="exception">The exception to throw, such as a <see cref="QueueFullException"/>.</param>
    public void FailWith(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        FailWhen(_ => exception);
    }

    /// <summary>
    /// Makes publishes fail by a rule: <paramref name="rule"/> sees each message and returns the exception to throw, or
    /// <see langword="null"/> to let it through. Replaces an earlier rule; <see cref="Succeed"/> removes it.
    /// </summary>
    /// <param name="rule">The rule.</param>
    public void FailWhen(Func<MessageRecord, Exception?> rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        lock (_gate)
        {
            _failure = rule;
            _failNext = int.MaxValue;
        }
    }

    /// <summary>Makes the next <paramref name="count"/> publishes throw <paramref name="exception"/>; the ones after succeed.</summary>
    /// <param name="exception">The exception to throw.</param>
    /// <param name="count">How many publishes fail; at least 1.</param>
    public void FailNext(Exception exception, int count = 1)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        lock (_gate)
        {
            _failure = _ => exception;
            _failNext = count;
        }
    }

    /// <summary>Lets every following publish succeed again.</summary>
    public void Succeed()
    {
        lock (_gate)
        {
            _failure = null;
            _failNext = 0;
        }
    }

    /// <summary>Forgets the recorded messages and the failure count (the failure rule stays).</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _messages.Clear();
            _sequences.Clear();
            _failed = 0;
        }
    }

    /// <inheritdoc/>
    /// <remarks>Names and payloads are checked as the broker checks them, so a bad name or a null payload fails here as it would in production.</remarks>
    public ValueTask<PublishReceipt> PublishAsync<T>(string queue, string eventName, T payload, PublishOptions options = default, CancellationToken cancellationToken = default)
    {
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: false);
        Names.ValidateEvent(eventName, nameof(eventName));
        MessageRules.ThrowIfNullPayload(payload, queue, eventName);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<PublishReceipt>(cancellationToken);
        }

        lock (_gate)
        {
            long sequence = _sequences.GetValueOrDefault(queue) + 1;
            var message = new MessageRecord(MessageRecordKind.Published, queue, null, null, options.MessageId ?? Guid.NewGuid(), sequence, eventName, payload, 0, null, null, options.Headers, _time.GetUtcNow(), typeof(T), options);
            if (_failNext > 0 && _failure?.Invoke(message) is { } failure)
            {
                _failed++;
                if (--_failNext == 0)
                {
                    _failure = null;
                }

                return ValueTask.FromException<PublishReceipt>(failure);
            }

            _sequences[queue] = sequence;
            _messages.Add(message);
            return new ValueTask<PublishReceipt>(new PublishReceipt(queue, message.MessageId, sequence));
        }
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"RecordingPublisher: {Messages.Count} messages, {FailedCount} failed");
}
