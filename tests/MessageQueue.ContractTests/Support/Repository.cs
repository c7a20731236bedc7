namespace MessageQueue.ContractTests.Support;

/// <summary>Paths in the checkout the tests run from.</summary>
public static class Repository
{
    /// <summary>
    /// The repository root: the nearest folder above the test binaries that holds MessageQueue.sln.
    /// (Source paths from [CallerFilePath] are mapped to /_/ in CI builds, so they cannot be used.)
    /// </summary>
    public static string Root()
    {
        for (DirectoryInfo? folder = new(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "MessageQueue.sln")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException($"No MessageQueue.sln above {AppContext.BaseDirectory}; run the tests from a checkout of the repository.");
    }
}
