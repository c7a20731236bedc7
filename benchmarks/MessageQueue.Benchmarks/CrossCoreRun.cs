using System.Diagnostics;
using System.Globalization;

namespace MessageQueue.Benchmarks;

/// <summary>
/// What moving one cache line between two cores costs on this machine: two threads bounce one value back and forth,
/// each waiting (spinning) for the other's write. Every handoff between a publisher and a consumer on two cores pays
/// this for each line they share, so it is the floor under every 1→1 figure, the raw channel's included.
/// </summary>
internal static class CrossCoreRun
{
    private const int RoundTrips = 2_000_000;
    private const int Runs = 5;

    public static int Run()
    {
        Console.WriteLine($"Cache-line round trip between two threads, {RoundTrips:N0} round trips per run, {Environment.ProcessorCount} cores");
        MeasureRoundTrip(); // warm-up: compiles the loops to their final code
        var results = new double[Runs];
        for (int run = 0; run < Runs; run++)
        {
            results[run] = MeasureRoundTrip();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"run {run + 1}: {results[run]:0} ns per round trip"));
        }

        Array.Sort(results);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median: {results[Runs / 2]:0} ns per round trip, about {results[Runs / 2] / 2:0} ns per line moved"));
        return 0;
    }

    private static double MeasureRoundTrip()
    {
        // One long in the middle of a padded array: nothing else shares its line.
        long[] box = new long[32];
        var echo = new Thread(() =>
        {
            for (long i = 1; i <= RoundTrips; i++)
            {
                while (Volatile.Read(ref box[16]) != (2 * i) - 1)
                {
                }

                Volatile.Write(ref box[16], 2 * i);
            }
        });
        echo.Start();
        var watch = Stopwatch.StartNew();
        for (long i = 1; i <= RoundTrips; i++)
        {
            Volatile.Write(ref box[16], (2 * i) - 1);
            while (Volatile.Read(ref box[16]) != 2 * i)
            {
            }
        }

        watch.Stop();
        echo.Join();
        return watch.Elapsed.TotalNanoseconds / RoundTrips;
    }
}
