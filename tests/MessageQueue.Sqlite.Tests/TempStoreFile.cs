namespace MessageQueue.Sqlite.Tests;

/// <summary>A store file path in a directory of its own, deleted with everything in it (WAL files too) on dispose.</summary>
public sealed class TempStoreFile : IDisposable
{
    public TempStoreFile(string name = "broker.db")
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("mq-sqlite-").FullName;
        Path = System.IO.Path.Combine(Directory, name);
    }

    public string Directory { get; }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A store still open in a failing test; the OS cleans the temp directory eventually.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
