using System.Globalization;
using MessageQueue;
using MessageQueue.Sqlite;

// Usage: crash-helper <store file> <seed> <first number> run|drain
//
// Lines on stdout (each ends with " ."), each written only after what it reports has happened:
//   ready                 the store opened and the queue was rebuilt
//   P <n>                 the publish of n completed (it is committed)
//   D <n> <attempt>       n was delivered
//   a <n>                 the ack of n begins: a group commit (of other work) may commit it before "A" is written
//   A <n>                 n was acked (the ack may not be committed yet)
//   F                     every ack reported above is committed
//   done <count>          drain mode: everything left was delivered and acked
if (args.Length != 4)
{
    Console.Error.WriteLine("usage: crash-helper <store file> <seed> <first number> run|drain");
    return 2;
}

string path = args[0];
var random = new Random(int.Parse(args[1], CultureInfo.InvariantCulture));
long next = long.Parse(args[2], CultureInfo.InvariantCulture);
bool drain = args[3] == "drain";
TextWriter output = TextWriter.Synchronized(Console.Out);
// Every line ends with " ." so that a line cut off by the kill can be told from a whole one.
void Say(string line) => output.WriteLine(line + " .");

await using var broker = new Broker(new BrokerOptions
{
    Store = new SqliteMessageStore(path),
    Durability = Durability.Committed,
    ShutdownTimeout = TimeSpan.Zero,
});
await using Subscription<long> worker = await broker.SubscribeAsync<long>(
    "crash", "#", new SubscriptionOptions { Name = "worker", MaxInFlight = 32, RedeliveryDelays = [TimeSpan.Zero], MaxDeliveries = int.MaxValue });
Say("ready");

if (drain)
{
    int count = 0;
    while (worker.TryRead(out Delivery<long> delivery))
    {
        Say($"D {delivery.Payload} {delivery.Attempt}");
        await delivery.AckAsync();
        count++;
    }

    await broker.FlushAsync();
    Say($"done {count}");
    return 0;
}

async Task PublishAsync()
{
    // Eight publishes in flight at a time, so that commits carry several (group commit).
    for (int round = 0; round < 100_000; round++)
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

await Task.WhenAll(Task.Run(PublishAsync), Task.Run(ConsumeAsync));
return 0;
