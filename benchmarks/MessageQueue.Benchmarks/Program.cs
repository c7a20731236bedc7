using BenchmarkDotNet.Running;
using MessageQueue.Benchmarks;

// "latency" runs the percentile measurement (LatencyRun), "memory" the memory per retained message (MemoryRun),
// "crosscore" the cost of moving a cache line between two cores (CrossCoreRun), "storage" the SQLite store's file size
// and restart (StorageRun); anything else goes to BenchmarkDotNet.
if (args is ["latency", ..])
{
    return await LatencyRun.RunAsync();
}

if (args is ["memory", ..])
{
    return await MemoryRun.RunAsync();
}

if (args is ["storage", ..])
{
    return await StorageRun.RunAsync(args);
}

if (args is ["crosscore", ..])
{
    return CrossCoreRun.Run();
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;

/// <summary>Entry point: <c>dotnet run -c Release -- --filter '*'</c>, <c>-- latency</c> or <c>-- memory</c>.</summary>
public partial class Program;
