namespace MessageQueue;

/// <summary>
/// Knows, through an <see cref="AsyncLocal{T}"/>, which handler-form subscription's handler is running
/// on the current flow. Set once per handler loop (not per message), so it costs nothing per delivery.
/// Disposing a subscription, its client or the broker from inside that handler must not wait for the
/// handler to return: it is the caller.
/// </summary>
internal static class HandlerScope
{
    private static readonly AsyncLocal<IRunningHandler?> Running = new();

    public static IRunningHandler? Current => Running.Value;

    public static void Enter(IRunningHandler handler) => Running.Value = handler;
}

/// <summary>A handler-form subscription whose loop is running.</summary>
internal interface IRunningHandler
{
    /// <summary>The consumer the handler reads from, when the broker owns it.</summary>
    IConsumer? Consumer { get; }
}
