using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;

namespace MessageQueue.Benchmarks;

/// <summary>
/// Publish → handler latency, p50 and p99, for the broker's handler form and a raw bounded channel, measured
/// message by message (BenchmarkDotNet reports means, not percentiles). Run with
/// <c>dotnet run -c Release -- latency</c>.
/// </summary>
/// <remarks>
/// <para><b>Hot:</b> one message at a time, the next published as soon as the last was handled, so the
/// consumer is always just about to wait: the cost of a hop through a live pipeline.</para>
/// <para><b>Paced:</b> one message every millisecond, so the consumer has gone to sleep each time: the cost
/// of waking it, which is what a lightly loaded service sees.</para>
/// </remarks>
internal static class LatencyRun
{
    private const int HotCount = 50_000;
    private const int PacedCount = 2_000;

    /// <summary>A message that carries when it was published.</summary>
    private sealed record Stamp(long PublishedAt);

    public static async Task<int> RunAsync()
    {
        Console.WriteLine($"Publish → handler latency; {Environment.ProcessorCount} cores, .NET {Environment.Version}");
        Console.WriteLine("| case | p50 | p99 | messages |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (bool paced in new[] { false, true })
        {
            int count = paced ? PacedCount : HotCount;
            Print("raw Channel<T>", paced, count, await RawChannelAsync(count, paced));
            Print("broker handler", paced, count, await BrokerAsync(count, paced));
        }

        return 0;
    }

    private static void Print(string name, bool paced, int count, long[] ticks)
    {
        Array.Sort(ticks);
        double Micro(double q) => ticks[(int)Math.Min(ticks.Length - 1, q * ticks.Length)] * 1_000_000.0 / Stopwatch.Frequency;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name}, {(paced ? "paced 1 ms" : "hot")} | {Micro(0.50):0.00} µs | {Micro(0.99):0.00} µs | {count} |"));
    }

    private static async Task<long[]> RawChannelAsync(int count, bool paced)
    {
        var latencies = new long[count];
        int handled = 0;
        Channel<Stamp> channel = Channel.CreateBounded<Stamp>(new BoundedChannelOptions(1024) { SingleReader = true, SingleWriter = true });
        Task reader = Task.Run(async () =>
        {
            for (int i = 0; i < count; i++)
            {
                Stamp stamp = await channel.Reader.ReadAsync();
                latencies[i] = Stopwatch.GetTimestamp() - stamp.PublishedAt;
                Volatile.Write(ref handled, i + 1);
            }
        });
        await DriveAsync(count, paced, () => Volatile.Read(ref handled), stamp => channel.Writer.WriteAsync(stamp));
        await reader;
        return latencies;
    }

    private static async Task<long[]> BrokerAsync(int count, bool paced)
    {
        var latencies = new long[count];
        int handled = 0;
        await using var broker = new Broker();
        await using Subscription subscription = await broker.SubscribeAsync<Stamp>("latency", "#", (delivery, _) =>
        {
            int i = handled;
            latencies[i] = Stopwatch.GetTimestamp() - delivery.Payload.PublishedAt;
            Volatile.Write(ref handled, i + 1);
            return ValueTask.CompletedTask;
        });
        await DriveAsync(count, paced, () => Volatile.Read(ref handled), async stamp => await broker.PublishAsync("latency", "tick", stamp));
        return latencies;
    }

    /// <summary>Publishes one message at a time, waiting (spinning) until it was handled, and for paced runs until the next millisecond.</summary>
    private static async Task DriveAsync(int count, bool paced, Func<int> handled, Func<Stamp, ValueTask> publish)
    {
        long interval = Stopwatch.Frequency / 1000;
        long next = Stopwatch.GetTimestamp();
        for (int i = 0; i < count; i++)
        {
            if (paced)
            {
                next += interval;
                while (Stopwatch.GetTimestamp() < next)
                {
                    Thread.SpinWait(20);
                }
            }

            await publish(new Stamp(Stopwatch.GetTimestamp()));
            var spin = new SpinWait();
            while (handled() <= i)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }
}
