using System.Globalization;
using MessageQueue;
using MessageQueue.Sqlite;

// Usage: crash-helper <store file> <seed> <first number> run|drain [memory window]
//
// With a memory window (QueueOptions.MaxMessagesInMemory), a run whose backlog is short of five windows first publishes
// five windows' worth of messages, so that most of the backlog waits in the store and is read back while the consumer
// works through it.
//
// Lines on stdout (each ends with " ."), each written only after what it reports has happened:
//   ready                 the store opened and the queue was rebuilt
//   S <depth> <paged out> after "ready": the messages the queue retains, and how many of them wait in the store only
//   P <n>                 the publish of n completed (it is committed)
//   D <n> <attempt>       n was delivered
//   a <n>                 the ack of n begins: a group commit (of other work) may commit it before "A" is written
//   A <n>                 n was acked (the ack may not be committed yet)
//   F                     every ack reported above is committed
//   done <count>          drain mode: everything left was delivered and acked
if (args.Length is not (4 or 5))
{
    Console.Error.WriteLine("usage: crash-helper <store file> <seed> <first number> run|drain [memory window]");
    return 2;
}

int window = args.Length == 5 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 0;

string path = args[0];
var random = new Random(int.Parse(args[1], CultureInfo.InvariantCulture));
long next = long.Parse(args[2], CultureInfo.InvariantCulture);
bool drain = args[3] == "drain";
TextWriter output = TextWriter.Synchronized(Console.Out);
long said = 0;

// Every line ends with " ." so that a line cut off by the kill can be told from a whole one.
void Say(string line)
{
    output.WriteLine(line + " .");
    Interlocked.Increment(ref said);
}

await using var broker = new Broker(new BrokerOptions
{
    Store = new SqliteMessageStore(path),
    Durability = Durability.Committed,
    ShutdownTimeout = TimeSpan.Zero,
});
broker.DeclareQueue<long>("crash", window > 0 ? new QueueOptions { MaxMessagesInMemory = window } : null);
await using Subscription<long> worker = await broker.SubscribeAsync<long>(
    "crash", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 32, RedeliveryDelays = [TimeSpan.Zero], MaxDeliveries = int.MaxValue });
Say("ready");

// A watchdog: if nothing happens for 10 seconds, the broker's state goes to stderr, for the test to report.
_ = Task.Run(async () =>
{
    long seen = -1;
    while (true)
    {
        await Task.Delay(TimeSpan.FromSeconds(10));
        long now = Interlocked.Read(ref said);
        if (now == seen)
        {
            await Console.Error.WriteLineAsync($"quiet for 10 s after {now} lines: {broker.GetSnapshot()}");
        }

        seen = now;
    }
});
QueueSnapshot start = broker.GetSnapshot().Queues.Single(q => q.Name == "crash");
Say($"S {start.Depth} {start.PagedOut}");

if (drain)
{
    // Until the queue retains nothing: what waits in the store is read back as the acks release what is in memory.
    int count = 0;
    while (broker.GetSnapshot().Queues.Single(q => q.Name == "crash").Depth > 0)
    {
        Delivery<long> delivery = await worker.ReadAsync();
        Say($"D {delivery.Payload} {delivery.Attempt}");
        await delivery.AckAsync();
        count++;
    }

    await broker.FlushAsync();
    Say($"done {count}");
    return 0;
}

async Task PublishAsync(int rounds)
{
    // Eight publishes in flight at a time, so that commits carry several (group commit).
    for (int round = 0; round < rounds; round++)
    {
        var pending = new List<(long Number, Task Task)>();
        for (int i = 0; i < 8; i++)
        {
            long number = next++;
            pending.Add((number, broker.PublishAsync("crash", "e", number).AsTask()));
        }

        foreach ((long number, Task task) in pending)
        {
            await task;
            Say($"P {number}");
        }
    }
}

async Task ConsumeAsync()
{
    int acks = 0;
    var held = new List<Delivery<long>>();
    while (true)
    {
        Delivery<long> delivery = await worker.ReadAsync();
        Say($"D {delivery.Payload} {delivery.Attempt}");
        int roll = random.Next(100);
        if (roll < 70)
        {
            Say($"a {delivery.Payload}");
            await delivery.AckAsync();
            Say($"A {delivery.Payload}");
            if (++acks % 10 == 0)
            {
                await broker.FlushAsync();
                Say("F");
            }
        }
        else if (roll < 85)
        {
            await delivery.NackAsync();
        }
        else if (held.Count < 16)
        {
            held.Add(delivery); // unsettled when the kill comes, or acked a little later
        }
        else
        {
            foreach (Delivery<long> old in held)
            {
                Say($"a {old.Payload}");
                if (await old.AckAsync())
                {
                    Say($"A {old.Payload}");
                }
            }

            held.Clear();
            Say($"a {delivery.Payload}");
            await delivery.AckAsync();
            Say($"A {delivery.Payload}");
        }
    }
}

if (window > 0 && start.Depth < 5 * window)
{
    // Before the consumer starts, and only while the backlog is short of five windows (the queue must not fill up, or
    // this would wait for room that only the consumer can make).
    await PublishAsync(5 * window / 8);
}

await Task.WhenAll(Task.Run(() => PublishAsync(100_000)), Task.Run(ConsumeAsync));
return 0;
