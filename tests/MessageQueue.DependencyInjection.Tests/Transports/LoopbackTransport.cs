using System.Threading.Channels;

namespace MessageQueue.DependencyInjection.Tests.Transports;

/// <summary>
/// A transport written the way one outside this repository would be: against the core's public API only (this test
/// project sees none of its internals). Each subscription has an unbounded channel; a publish goes to every
/// subscription of its queue whose filter is "#" or the event's name; a nack puts the delivery back at the end with one
/// attempt more, or counts it as dead-lettered on its last attempt; a reject counts it as dead-lettered.
/// </summary>
public sealed class LoopbackTransport : ITransport, IDisposable
{
    private readonly Lock _gate = new();
    private readonly List<Subscription> _subscriptions = [];
    private readonly List<string> _declared = [];
    private long _sequence;
    private int _acked;
    private int _nacked;
    private int _deadLettered;

    public int Acked => Volatile.Read(ref _acked);

    public int Nacked => Volatile.Read(ref _nacked);

    public int DeadLettered => Volatile.Read(ref _deadLettered);

    public bool IsDisposed { get; private set; }

    public string MessagingSystem => "loopback";

    /// <summary>The queues declared ahead of use, in order.</summary>
    public IReadOnlyList<string> Declared
    {
        get
        {
            lock (_gate)
            {
                return [.. _declared];
            }
        }
    }

    public Task DeclareQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        MessageRules.ThrowIfInvalidQueueName(queue, allowDeadLetterQueue: true);
        lock (_gate)
        {
            _declared.Add(queue);
        }

        return Task.CompletedTask;
    }

    public ValueTask<PublishReceipt> PublishAsync<T>(string queue, string eventName, T payload, PublishOptions options = default, CancellationToken cancellationToken = default)
    {
        MessageRules.ThrowIfInvalidQueueName(queue);
        MessageRules.ThrowIfInvalidEventName(eventName);
        MessageRules.ThrowIfNullPayload(payload, queue, eventName);
        long sequence = Interlocked.Increment(ref _sequence);
        var message = new Message<T>(options.MessageId ?? Guid.NewGuid(), queue, eventName, payload, sequence, TimeProvider.System.GetUtcNow(), options.Headers);
        lock (_gate)
        {
            foreach (Subscription subscription in _subscriptions)
            {
                if (subscription is LoopbackSubscription<T> typed && typed.Queue == queue && typed.Matches(eventName))
                {
                    typed.Enqueue(message, attempt: 1);
                }
            }
        }

        return ValueTask.FromResult(new PublishReceipt(queue, message.Id, sequence));
    }

    public ValueTask<Subscription<T>> SubscribeAsync<T>(string queue, IEnumerable<string> filters, SubscriptionOptions? options = null, CancellationToken cancellationToken = default)
    {
        MessageRules.ThrowIfInvalidQueueName(queue, allowDeadLetterQueue: true);
        ArgumentNullException.ThrowIfNull(filters);
        string[] list = [.. filters];
        foreach (string filter in list)
        {
            MessageRules.ThrowIfInvalidFilter(filter, nameof(filters));
        }

        SubscriptionOptions settings = options ?? new SubscriptionOptions();
        settings.Validate();
        var subscription = new LoopbackSubscription<T>(this, queue, settings.Name, list, settings.MaxDeliveries);
        lock (_gate)
        {
            _subscriptions.Add(subscription);
        }

        return ValueTask.FromResult<Subscription<T>>(subscription);
    }

    public void Dispose() => IsDisposed = true;

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private void Forget(Subscription subscription)
    {
        lock (_gate)
        {
            _subscriptions.Remove(subscription);
        }
    }

    private sealed class LoopbackSubscription<T>(LoopbackTransport owner, string queue, string? name, string[] filters, int maxDeliveries) : Subscription<T>
    {
        private readonly Channel<Delivery<T>> _channel = Channel.CreateUnbounded<Delivery<T>>();
        private readonly Lock _gate = new();
        private readonly Dictionary<long, Delivery<T>> _pending = [];
        private long _nextToken;

        public override string Queue => queue;

        public override string? Name => name;

        public override IReadOnlyList<string> Filters => filters;

        public override Task Completion => _channel.Reader.Completion;

        public bool Matches(string eventName) => Array.Exists(filters, filter => filter == "#" || filter == eventName);

        public void Enqueue(Message<T> message, int attempt)
        {
            long token = Interlocked.Increment(ref _nextToken);
            var delivery = new Delivery<T>(message, attempt, attempt >= maxDeliveries, this, token);
            lock (_gate)
            {
                _pending[token] = delivery;
            }

            _channel.Writer.TryWrite(delivery);
        }

        public override ValueTask<Delivery<T>> ReadAsync(CancellationToken cancellationToken = default) => _channel.Reader.ReadAsync(cancellationToken);

        public override bool TryRead(out Delivery<T> delivery) => _channel.Reader.TryRead(out delivery);

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => _channel.Reader.WaitToReadAsync(cancellationToken);

        protected override ValueTask<bool> AckCoreAsync(long token, CancellationToken cancellationToken)
        {
            bool settled = TryTake(token, out _);
            if (settled)
            {
                Interlocked.Increment(ref owner._acked);
            }

            return ValueTask.FromResult(settled);
        }

        protected override ValueTask<bool> NackCoreAsync(long token, TimeSpan? delay, CancellationToken cancellationToken)
        {
            if (!TryTake(token, out Delivery<T> delivery))
            {
                return ValueTask.FromResult(false);
            }

            Interlocked.Increment(ref owner._nacked);
            if (delivery.IsLastAttempt)
            {
                Interlocked.Increment(ref owner._deadLettered);
            }
            else
            {
                Enqueue(delivery.Message, delivery.Attempt + 1);
            }

            return ValueTask.FromResult(true);
        }

        protected override ValueTask<bool> ExtendCoreAsync(long token, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                return ValueTask.FromResult(_pending.ContainsKey(token));
            }
        }

        protected override ValueTask<bool> RejectCoreAsync(long token, string? reason, CancellationToken cancellationToken)
        {
            bool settled = TryTake(token, out _);
            if (settled)
            {
                Interlocked.Increment(ref owner._deadLettered);
            }

            return ValueTask.FromResult(settled);
        }

        public override ValueTask DisposeAsync()
        {
            owner.Forget(this);
            _channel.Writer.TryComplete();
            return ValueTask.CompletedTask;
        }

        private bool TryTake(long token, out Delivery<T> delivery)
        {
            lock (_gate)
            {
                return _pending.Remove(token, out delivery);
            }
        }
    }
}
