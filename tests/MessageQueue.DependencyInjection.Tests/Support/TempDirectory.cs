namespace MessageQueue.DependencyInjection.Tests.Support;

/// <summary>A directory of its own for a test's store file, deleted with everything in it on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Path = Directory.CreateTempSubdirectory("mq-di-").FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A store still open in a failing test; the OS cleans the temp directory eventually.
        }
    }
}
