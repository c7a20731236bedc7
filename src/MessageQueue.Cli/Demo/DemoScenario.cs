using System.Globalization;
using MessageQueue.Sqlite;
using Spectre.Console;

namespace MessageQueue.Cli.Demo;

/// <summary>
/// The teaching queue server scenario: a <c>database</c> queue, three subscribers with their own filters,
/// and a durable auditor that disconnects holding an unacked message, misses a batch, reconnects and
/// catches up. With a store file the queue is durable, and the auditor also catches up across runs: each
/// run starts with what the last one left for it and ends by leaving a batch for the next. It narrates on
/// an <see cref="IAnsiConsole"/> and returns the accounting.
/// </summary>
/// <remarks>
/// Nothing here waits for time to pass: every step waits for a read, an ack count or a broker
/// snapshot, so the run is deterministic in what it prints and checks. One overall limit
/// (<see cref="DemoOptions.Timeout"/>) turns a lost message into a failed run instead of a hang.
/// </remarks>
internal sealed class DemoScenario
{
    public const string QueueName = "database";
    public const string AuditSubscription = "audit";

    private static readonly string[] Events = ["add", "update", "delete"];
    private static readonly string[] Tables = ["customers", "orders", "invoices"];

    private readonly IAnsiConsole _console;
    private readonly TimeProvider _time;

    public DemoScenario(IAnsiConsole console, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(console);
        _console = console;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Runs the scenario once, on a broker of its own.</summary>
    /// <param name="options">The batch size, seed and overall time limit.</param>
    /// <param name="cancellationToken">Cancels the run (Ctrl+C).</param>
    /// <returns>What happened, with the accounting.</returns>
    public async Task<DemoResult> RunAsync(DemoOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();

        // Every client is disposed before the broker, so there is nothing left to drain at shutdown;
        // a zero timeout keeps a failed run from waiting there.
        var broker = new Broker(new BrokerOptions
        {
            TimeProvider = _time,
            ShutdownTimeout = TimeSpan.Zero,
            Store = options.StorePath is { } path ? new SqliteMessageStore(path) : null,
        });
        await using (broker.ConfigureAwait(false))
        {
            return await RunAsync(broker, options, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<DemoResult> RunAsync(Broker broker, DemoOptions options, CancellationToken cancellationToken)
    {
        int count = options.Count;

        // Room for every batch plus the auditor's unacked message, so that publishing never waits.
        broker.DeclareQueue<DbChange>(QueueName, new QueueOptions { MaxMessages = Math.Max(64, 6 * count) });

        var indexer = new SubscriberLog("indexer", ["add", "update"]);
        var janitor = new SubscriberLog("janitor", ["delete"]);
        var auditor = new SubscriberLog("auditor", ["#"], AuditSubscription);
        var auditOptions = new SubscriptionOptions { Name = AuditSubscription, MaxInFlight = 8 };
        var ephemeralOptions = new SubscriptionOptions { MaxInFlight = 8 };

        var random = new Random(options.Seed);
        var published = new List<PublishedMessage>(2 * count);
        var catchUp = new List<DeliveryRecord>(count + 1);
        var clients = new List<BrokerClient>();
        var readers = new List<Task>();
        DeliveryRecord? held = null;
        int heldAtDisconnect = 0;
        bool? lateAckAccepted = null;
        int backlogWhileAway = 0;
        string? failure = null;
        string step = "subscribing";

        using var limit = new CancellationTokenSource(options.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, limit.Token);
        CancellationToken token = linked.Token;

        WriteIntro(options.StorePath, indexer, janitor, auditor);

        // With a store the queue's counts go on from earlier runs; this run's are counted from here.
        long publishedBefore = broker.GetSnapshot().Queue(QueueName).Published;
        var carriedOver = new List<DeliveryRecord>();
        int keptAtStart = 0;

        BrokerSnapshot final;
        try
        {
            try
            {
                if (options.StorePath is not null)
                {
                    step = "the auditor catching up on the last run";
                    keptAtStart = await CatchUpOnLastRunAsync(broker, auditor, auditOptions, carriedOver, token).ConfigureAwait(false);
                }

                BrokerClient publisher = Connect(broker, clients, "publisher");

                // Everyone subscribes before the first publish: an ephemeral subscription only sees
                // messages published after it subscribed.
                BrokerClient indexerClient = Connect(broker, clients, indexer.Name);
                Subscription<DbChange> indexerSubscription = await indexerClient
                    .SubscribeAsync<DbChange>(QueueName, indexer.Filters, ephemeralOptions, token).ConfigureAwait(false);
                readers.Add(ConsumeAsync(indexerSubscription, indexer, token));

                BrokerClient janitorClient = Connect(broker, clients, janitor.Name);
                Subscription<DbChange> janitorSubscription = await janitorClient
                    .SubscribeAsync<DbChange>(QueueName, janitor.Filters, ephemeralOptions, token).ConfigureAwait(false);
                readers.Add(ConsumeAsync(janitorSubscription, janitor, token));

                BrokerClient auditorClient = Connect(broker, clients, auditor.Name);
                Subscription<DbChange> audit = await auditorClient
                    .SubscribeAsync<DbChange>(QueueName, auditor.Filters, auditOptions, token).ConfigureAwait(false);

                step = "publishing batch 1";
                List<PublishedMessage> batch1 = await PublishBatchAsync(publisher, 1, count, random, token).ConfigureAwait(false);
                published.AddRange(batch1);
                WriteBatch("Published batch 1", batch1);

                // The auditor reads the whole batch and acks all of it but one message in the middle.
                step = "the auditor reading batch 1";
                int heldIndex = count / 2;
                Delivery<DbChange> heldDelivery = default;
                for (int i = 0; i < count; i++)
                {
                    Delivery<DbChange> delivery = await audit.ReadAsync(token).ConfigureAwait(false);
                    if (i == heldIndex)
                    {
                        heldDelivery = delivery;
                        held = DeliveryRecord.From(delivery);
                        auditor.Record(delivery, acked: false);
                        continue;
                    }

                    auditor.Record(delivery, await delivery.AckAsync(token).ConfigureAwait(false));
                }

                heldAtDisconnect = broker.GetSnapshot().Queue(QueueName).Subscription(AuditSubscription).InFlight;
                Line(
                    $"[bold]auditor[/] read {Messages(count)}, acked {count - 1} and kept {Describe(held!)} unacked.");

                // Disconnect: the client owns the subscription, so disposing it detaches the consumer and
                // the durable subscription takes back the unacked message.
                step = "disconnecting the auditor";
                await auditorClient.DisposeAsync().ConfigureAwait(false);
                Line(
                    $"[bold]auditor[/] disconnected holding {heldAtDisconnect} unacked {(heldAtDisconnect == 1 ? "message" : "messages")} ({Describe(held!)}).");

                // The delivery it kept is stale now: acking it must fail, because the message will come again.
                lateAckAccepted = await heldDelivery.AckAsync(token).ConfigureAwait(false);
                Line(lateAckAccepted == false
                    ? (FormattableString)$"  Its late ack of {Describe(held!)} returned false: the broker took the message back and will deliver it again."
                    : $"  Its late ack of {Describe(held!)} returned true: the broker should have refused it.");

                // Publishing goes on; the durable subscription keeps collecting while nobody is attached.
                step = "publishing batch 2";
                List<PublishedMessage> batch2 = await PublishBatchAsync(publisher, 2, count, random, token).ConfigureAwait(false);
                published.AddRange(batch2);
                WriteBatch("Published batch 2 while the auditor is away", batch2);

                step = "indexer and janitor receiving batches 1 and 2";
                int indexerMatched = MatchedCount(indexer, published);
                int janitorMatched = MatchedCount(janitor, published);
                await Task.WhenAll(indexer.WhenAckedAsync(indexerMatched), janitor.WhenAckedAsync(janitorMatched))
                    .WaitAsync(token).ConfigureAwait(false);
                backlogWhileAway = broker.GetSnapshot().Queue(QueueName).Subscription(AuditSubscription).Backlog;
                Line(
                    $"Meanwhile [bold]indexer[/] acked {indexerMatched} of {indexerMatched} and [bold]janitor[/] {janitorMatched} of {janitorMatched} matched messages; the broker holds {backlogWhileAway} for the durable subscription '{AuditSubscription}'.");

                // Reconnect with the same name and filters: first what was in flight and unacked, then
                // everything missed, in publish order.
                step = "the auditor catching up";
                int expectedCatchUp = 1 + batch2.Count(message => TopicMatcher.MatchesAny(auditor.Filters, message.Event));
                BrokerClient auditorAgain = Connect(broker, clients, auditor.Name);
                Subscription<DbChange> auditAgain = await auditorAgain
                    .SubscribeAsync<DbChange>(QueueName, auditor.Filters, auditOptions, token).ConfigureAwait(false);
                for (int i = 0; i < expectedCatchUp; i++)
                {
                    Delivery<DbChange> delivery = await auditAgain.ReadAsync(token).ConfigureAwait(false);
                    catchUp.Add(DeliveryRecord.From(delivery));
                    auditor.Record(delivery, await delivery.AckAsync(token).ConfigureAwait(false));
                }

                // Anything beyond that would be a duplicate; it is in the channel by now if it exists.
                while (auditAgain.TryRead(out Delivery<DbChange> extra))
                {
                    catchUp.Add(DeliveryRecord.From(extra));
                    auditor.Record(extra, await extra.AckAsync(token).ConfigureAwait(false));
                }

                WriteCatchUp(held!, catchUp);

                step = "waiting for every ack";
                await Task.WhenAll(
                        indexer.WhenAckedAsync(MatchedCount(indexer, published)),
                        janitor.WhenAckedAsync(MatchedCount(janitor, published)),
                        auditor.WhenAckedAsync(MatchedCount(auditor, published)))
                    .WaitAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                failure = string.Create(CultureInfo.InvariantCulture, $"timed out after {options.Timeout.TotalSeconds:0.#} s while {step}");
                Line($"[red]Timed out[/] after {options.Timeout.TotalSeconds:0.#} s while {step}.");
            }

            // With every consumer still attached: disposing an ephemeral consumer lets go of what it
            // holds, which would hide an unacked message from the depth.
            final = broker.GetSnapshot();
        }
        finally
        {
            foreach (BrokerClient client in clients)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }

            // The readers end when their channels complete, which disposing their clients just did.
            await Task.WhenAll(readers).ConfigureAwait(false);
        }

        // With a store: one more batch while the auditor is offline, kept for the next run.
        List<PublishedMessage> forNextRun = [];
        int backlogAtEnd = 0;
        if (options.StorePath is not null && failure is null)
        {
            BrokerClient publisher = broker.Connect("publisher");
            await using (publisher.ConfigureAwait(false))
            {
                forNextRun = await PublishBatchAsync(publisher, 3, count, random, cancellationToken).ConfigureAwait(false);
            }

            backlogAtEnd = broker.GetSnapshot().Queue(QueueName).Subscription(AuditSubscription).Backlog;
            WriteBatch("Published batch 3 with the auditor offline", forNextRun);
            Line($"  They stay in {options.StorePath} for the durable subscription '{AuditSubscription}' ({backlogAtEnd} kept). Run [bold]mq demo[/] again: the auditor catches up on them after the restart.");
        }

        QueueSnapshot queue = final.Queue(QueueName);
        var result = new DemoResult
        {
            StorePath = options.StorePath,
            KeptAtStart = keptAtStart,
            CarriedOver = carriedOver,
            KeptForNextRun = [.. forNextRun.Select(message => message.Sequence)],
            BacklogAtEnd = backlogAtEnd,
            Options = options,
            Published = published,
            Accounts =
            [
                SubscriberAccount.Compute(indexer, published, expectedRedeliveries: 0),
                SubscriberAccount.Compute(janitor, published, expectedRedeliveries: 0),
                SubscriberAccount.Compute(auditor, published, expectedRedeliveries: 1),
            ],
            Held = held,
            HeldAtDisconnect = heldAtDisconnect,
            LateAckAccepted = lateAckAccepted,
            MissedWhileAway = [.. published
                .Where(message => message.Batch == 2 && TopicMatcher.MatchesAny(auditor.Filters, message.Event))
                .Select(message => message.Sequence)],
            BacklogWhileAway = backlogWhileAway,
            CatchUp = catchUp,
            QueuePublished = queue.Published - publishedBefore,
            QueueUnrouted = queue.Unrouted,
            FinalDepth = queue.Depth,
            Failure = failure,
        };

        DemoReport.Write(_console, result);
        return result;
    }

    /// <summary>
    /// With a store: the auditor reconnects first and reads what the last run left for it (the broker rebuilt its
    /// durable subscription from the file), acks it, and disconnects again, before this run's story begins.
    /// </summary>
    /// <returns>How many messages the store held for it.</returns>
    private async Task<int> CatchUpOnLastRunAsync(Broker broker, SubscriberLog auditor, SubscriptionOptions auditOptions, List<DeliveryRecord> carriedOver, CancellationToken cancellationToken)
    {
        BrokerClient client = broker.Connect(auditor.Name);
        await using (client.ConfigureAwait(false))
        {
            Subscription<DbChange> audit = await client.SubscribeAsync<DbChange>(QueueName, auditor.Filters, auditOptions, cancellationToken).ConfigureAwait(false);
            SubscriptionSnapshot kept = broker.GetSnapshot().Queue(QueueName).Subscription(AuditSubscription);
            int waiting = kept.Backlog + kept.InFlight;
            for (int i = 0; i < waiting; i++)
            {
                Delivery<DbChange> delivery = await audit.ReadAsync(cancellationToken).ConfigureAwait(false);
                carriedOver.Add(DeliveryRecord.From(delivery));
                await delivery.AckAsync(cancellationToken).ConfigureAwait(false);
            }

            if (waiting == 0)
            {
                Line($"The store held nothing for '{AuditSubscription}': a first run on this file (or the last one left nothing).");
            }
            else
            {
                Line($"[bold]auditor[/] reconnected after the restart and caught up on {Messages(waiting)} the last run left in the store: {ListSequences(carriedOver)}.");
            }

            return waiting;
        }
    }

    private static BrokerClient Connect(Broker broker, List<BrokerClient> clients, string name)
    {
        BrokerClient client = broker.Connect(name);
        clients.Add(client);
        return client;
    }

    /// <summary>An ephemeral subscriber: reads and acks everything until its client is disposed.</summary>
    private static async Task ConsumeAsync(Subscription<DbChange> subscription, SubscriberLog log, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (Delivery<DbChange> delivery in subscription.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                log.Record(delivery, await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The run timed out or was cancelled; the accounting shows what arrived.
        }
    }

    private static async Task<List<PublishedMessage>> PublishBatchAsync(
        BrokerClient publisher, int batch, int count, Random random, CancellationToken cancellationToken)
    {
        var published = new List<PublishedMessage>(count);
        for (int i = 0; i < count; i++)
        {
#pragma warning disable CA5394 // Seeded on purpose: the same seed repeats the same run. Nothing secret here.
            string eventName = Events[random.Next(Events.Length)];
            string table = Tables[random.Next(Tables.Length)];
            int id = random.Next(100, 1000);
#pragma warning restore CA5394
            var change = new DbChange(table, id, Summarize(eventName, table, id));
            PublishReceipt receipt = await publisher
                .PublishAsync(QueueName, eventName, change, default, cancellationToken).ConfigureAwait(false);
            published.Add(new PublishedMessage(batch, receipt.MessageId, receipt.Sequence, eventName, change));
        }

        return published;
    }

    private static string Summarize(string eventName, string table, int id) => eventName switch
    {
        "add" => string.Create(CultureInfo.InvariantCulture, $"row {id} inserted into {table}"),
        "update" => string.Create(CultureInfo.InvariantCulture, $"row {id} of {table} changed"),
        _ => string.Create(CultureInfo.InvariantCulture, $"row {id} deleted from {table}"),
    };

    private static int MatchedCount(SubscriberLog log, IEnumerable<PublishedMessage> published) =>
        published.Count(message => TopicMatcher.MatchesAny(log.Filters, message.Event));

    // ---------------------------------------------------------------- narration

    private void WriteIntro(string? storePath, params SubscriberLog[] subscribers)
    {
        Line(storePath is null
            ? (FormattableString)$"[bold]mq demo[/]: the teaching queue server, in memory."
            : $"[bold]mq demo[/]: the teaching queue server, on the SQLite store {storePath}.");
        Line(
            $"One queue, '{QueueName}', carries add/update/delete events. Three clients subscribe with their own filters. The auditor's subscription is durable: when it disconnects, the broker keeps its messages, and when it comes back it catches up, so nothing is lost.");
        foreach (SubscriberLog subscriber in subscribers)
        {
            string kind = subscriber.DurableName is { } name ? $"durable subscription '{name}'" : "ephemeral";
            Line($"  [bold]{subscriber.Name}[/] subscribes to {string.Join(", ", subscriber.Filters)} ({kind})");
        }
    }

    private void WriteBatch(string title, List<PublishedMessage> batch)
    {
        string events = string.Join(
            ", ",
            Events.Select(name => (name, count: batch.Count(message => message.Event == name)))
                .Where(pair => pair.count > 0)
                .Select(pair => string.Create(CultureInfo.InvariantCulture, $"{pair.name} {pair.count}")));
        Line($"{title}: {Messages(batch.Count)}, #{batch[0].Sequence}..#{batch[^1].Sequence} ({events}).");
    }

    private void WriteCatchUp(DeliveryRecord held, List<DeliveryRecord> catchUp)
    {
        if (catchUp.Count > 0
            && catchUp[0].MessageId == held.MessageId
            && catchUp.Skip(1).All(delivery => delivery.Attempt == 1)
            && catchUp.Skip(1).Select(delivery => delivery.Sequence).Order().SequenceEqual(catchUp.Skip(1).Select(delivery => delivery.Sequence)))
        {
            Line(
                $"[bold]auditor[/] reconnected to '{AuditSubscription}' and caught up with {Messages(catchUp.Count)}: first {Describe(held)} again (attempt {catchUp[0].Attempt}), then the {catchUp.Count - 1} it missed, in publish order: {ListSequences(catchUp.Skip(1))}.");
        }
        else
        {
            Line(
                $"[bold]auditor[/] reconnected to '{AuditSubscription}' and read {Messages(catchUp.Count)}: {string.Join(", ", catchUp.Select(d => string.Create(CultureInfo.InvariantCulture, $"#{d.Sequence} {d.Event} (attempt {d.Attempt})")))}.");
        }
    }

    private static string ListSequences(IEnumerable<DeliveryRecord> deliveries)
    {
        const int Shown = 12;
        var list = deliveries.ToList();
        string shown = string.Join(", ", list.Take(Shown).Select(d => string.Create(CultureInfo.InvariantCulture, $"#{d.Sequence}")));
        return list.Count > Shown
            ? string.Create(CultureInfo.InvariantCulture, $"{shown} and {list.Count - Shown} more")
            : shown;
    }

    private static string Messages(int count) =>
        string.Create(CultureInfo.InvariantCulture, $"{count} {(count == 1 ? "message" : "messages")}");

    private static string Describe(DeliveryRecord delivery) =>
        string.Create(CultureInfo.InvariantCulture, $"#{delivery.Sequence} {delivery.Event}");

    /// <summary>Writes one line of markup; interpolated values are escaped and formatted invariantly.</summary>
    private void Line(FormattableString markup) => _console.MarkupLineInterpolated(CultureInfo.InvariantCulture, markup);
}
