namespace MessageQueue;

public sealed partial class Broker
{
    /// <summary>
    /// Moves dead letters of <paramref name="queue"/> back into it, oldest first: all of them, or those whose
    /// event matches <see cref="ReplayOptions.Filter"/>, up to <see cref="ReplayOptions.MaxMessages"/>.
    /// </summary>
    /// <remarks>
    /// <para>Each dead letter is published into the source queue as a new message (a new sequence, the same
    /// <see cref="Message{T}.Id"/>, its original headers without the dead-letter ones, and
    /// <see cref="MessageHeaders.ReplayCount"/> increased), and only then removed from the dead-letter queue,
    /// so a failure part-way loses nothing: what was not moved is still a dead letter. The publish follows
    /// the source queue's overflow policy. If it fails again it comes back to the dead-letter queue like any
    /// message. A dead letter that a consumer of the dead-letter queue holds in flight is moved too; that
    /// consumer's settle then has no further effect.</para>
    /// <para>Replays of one queue run one at a time.</para>
    /// </remarks>
    /// <param name="queue">The source queue (not its dead-letter queue).</param>
    /// <param name="options">Which dead letters to move and how many.</param>
    /// <param name="cancellationToken">A token that stops the replay between two messages; those already moved stay moved.</param>
    /// <returns>How many dead letters were moved.</returns>
    /// <exception cref="ArgumentException">The queue name or the filter is invalid, or a dead-letter queue was named.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="ReplayOptions.MaxMessages"/> is less than 1.</exception>
    /// <exception cref="QueueNotFoundException">The queue does not exist.</exception>
    /// <exception cref="QueueFullException">The source queue is full and rejects, or stayed full for its publish timeout.</exception>
    public ValueTask<int> ReplayDeadLettersAsync(string queue, ReplayOptions options = default, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        Names.ValidateQueueName(queue, nameof(queue), allowDeadLetter: true);
        if (queue.EndsWith(Names.DeadLetterSuffix, StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"'{queue}' is a dead-letter queue; pass the name of the queue its dead letters came from ('{queue[..^Names.DeadLetterSuffix.Length]}').",
                nameof(queue));
        }

        if (options.Filter is not null)
        {
            Names.ValidateFilter(options.Filter, nameof(options));
        }

        if (options.MaxMessages is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxMessages, "ReplayOptions.MaxMessages must be at least 1, or null to move every dead letter.");
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        if (!Queues.TryGetValue(queue, out BrokerQueue? source))
        {
            throw NotFound(queue);
        }

        return source.ReplayDeadLettersAsync(options.Filter, options.MaxMessages ?? int.MaxValue, cancellationToken);
    }
}
