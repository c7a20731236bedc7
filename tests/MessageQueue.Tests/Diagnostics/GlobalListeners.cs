using Xunit;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>
/// An ActivityListener is process-wide: while the tracing tests listen, every publish in the process is traced and
/// carries a trace context in its headers. So these tests run alone, after the parallel ones: nothing else runs while
/// they listen, and the allocation gate, which measures the path with nobody listening, is among them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalListeners
{
    public const string Name = "Process-wide listeners";
}
