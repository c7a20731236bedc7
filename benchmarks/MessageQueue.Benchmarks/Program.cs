using BenchmarkDotNet.Running;
using MessageQueue.Benchmarks;

// "latency" runs the percentile measurement (LatencyRun); anything else goes to BenchmarkDotNet.
if (args is ["latency", ..])
{
    return await LatencyRun.RunAsync();
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;

/// <summary>Entry point: <c>dotnet run -c Release -- --filter '*'</c>, or <c>-- latency</c>.</summary>
public partial class Program;
