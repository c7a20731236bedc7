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
/// publisher.Messages.Should().ContainSingle(m => m.Event == "order.created");
///
/// publisher.FailWith(new QueueFullException("orders", "Queue 'orders' is full.", null));
/// await checkout.Invoking(c => c.PlaceAsync(new Order(8))).Should().ThrowAsync&lt;QueueFullException&gt;();
/// </code>
/// </example>
public sealed class RecordingPublisher : IPublisher
{
    private readonly Lock _gate = new();
    private readonly List<RecordedMessage> _messages = [];
    private readonly Dictionary<string, long> _sequences = new(StringComparer.Ordinal);
    private Func<RecordedMessage, Exception?>? _failure;
    private int _failNext;
    private int _failed;

    /// <summary>Gets the messages published so far, in order (not the ones that were made to fail).</summary>
    public IReadOnlyList<RecordedMessage> Messages
    {
        get
        {
            lock (_gate)
            {
                return [.. _messages];
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
        ArgumentNullException.ThrowIfNull(queue);
        var payloads = new List<T>();
        foreach (RecordedMessage message in Messages)
        {
            if (string.Equals(message.Queue, queue, StringComparison.Ordinal) && (eventName is null || string.Equals(message.Event, eventName, StringComparison.Ordinal)))
            {
                payloads.Add(message.GetPayload<T>());
            }
        }

        return payloads;
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
    public void FailWhen(Func<RecordedMessage, Exception?> rule)
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
            var message = new RecordedMessage(queue, eventName, payload, typeof(T), options.MessageId ?? Guid.NewGuid(), sequence, options);
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

/// <summary>A message a <see cref="RecordingPublisher"/> accepted.</summary>
public sealed class RecordedMessage
{
    internal RecordedMessage(string queue, string eventName, object? payload, Type payloadType, Guid messageId, long sequence, PublishOptions options)
    {
        Queue = queue;
        Event = eventName;
        Payload = payload;
        PayloadType = payloadType;
        MessageId = messageId;
        Sequence = sequence;
        Options = options;
    }

    /// <summary>Gets the queue it was published to.</summary>
    public string Queue { get; }

    /// <summary>Gets the event name.</summary>
    public string Event { get; }

    /// <summary>Gets the payload.</summary>
    public object? Payload { get; }

    /// <summary>Gets the payload type the caller published with (the <c>T</c> of <c>PublishAsync&lt;T&gt;</c>).</summary>
    public Type PayloadType { get; }

    /// <summary>Gets the message id: <see cref="PublishOptions.MessageId"/> when given, otherwise a new one.</summary>
    public Guid MessageId { get; }

    /// <summary>Gets its sequence: 1, 2, 3… per queue, as the broker numbers them.</summary>
    public long Sequence { get; }

    /// <summary>Gets the publish options it was published with (headers, time to live, delay, message id).</summary>
    public PublishOptions Options { get; }

    /// <summary>Gets the payload as <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <returns>The payload.</returns>
    /// <exception cref="InvalidCastException">The payload is not a <typeparamref name="T"/>.</exception>
    public T GetPayload<T>() => Payload is T typed
        ? typed
        : Payload is null && default(T) is null ? default! : throw new InvalidCastException($"The payload of {this} is {PayloadType.Name}, not {typeof(T).Name}.");

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Queue}#{Sequence} '{Event}'");
}
