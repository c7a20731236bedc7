using Xunit;

namespace MessageQueue.Tests.Diagnostics;

/// <summary>
/// An ActivityListener is process-wide: while the tracing tests listen, every publish in the process is traced. The
/// allocation gate, which measures the path with nobody listening, never runs at the same time as they do.
/// </summary>
[CollectionDefinition(Name)]
public sealed class GlobalListeners
{
    public const string Name = "Process-wide listeners";
}
