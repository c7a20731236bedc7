namespace MessageQueue.ContractTests.Support;

/// <summary>
/// Guards against hangs. Tests wait on signals (tasks completed by the code under test); this only
/// turns a signal that never comes into a failure with a message, instead of a stuck test run.
/// It is never used to wait for time to pass. While a test waits, the wait is recorded against the test's
/// <see cref="TestRun"/>, so that a test hung elsewhere still says what it was waiting for.
/// </summary>
public static class TestWait
{
    /// <summary>How long a signal may take before the test is declared hung.</summary>
    public static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    public static Task OrHang(this Task task, string what) => task.OrHang(what, HangGuard);

    /// <summary>
    /// Like <see cref="OrHang(Task, string)"/>, with a bound of its own, for a step that is slow by nature rather than
    /// a signal: another process that bounds its own work (a server's boot), whose bound this must be above.
    /// </summary>
    public static async Task OrHang(this Task task, string what, TimeSpan guard)
    {
        TestRun.WaitScope wait = TestRun.Waiting(what);
        bool arrived = false;
        try
        {
            await task.WaitAsync(guard);
            arrived = true;
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Hung: {what} did not happen within {guard.TotalSeconds:0} s.");
        }
        finally
        {
            wait.End(arrived);
        }
    }

    public static Task<T> OrHang<T>(this Task<T> task, string what) => task.OrHang(what, HangGuard);

    public static async Task<T> OrHang<T>(this Task<T> task, string what, TimeSpan guard)
    {
        await ((Task)task).OrHang(what, guard);
        return await task;
    }

    public static Task<T> OrHang<T>(this ValueTask<T> task, string what) => task.AsTask().OrHang(what);

    public static Task OrHang(this ValueTask task, string what) => task.AsTask().OrHang(what);
}
