using Microsoft.Extensions.Logging;

namespace MessageQueue.DependencyInjection;

/// <summary>The hosted handlers' log messages. Payloads are never logged: only ids, events and counts.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Handler {Handler} started on queue '{Queue}', subscription '{Subscription}', filters {Filters}, up to {MaxConcurrency} at a time")]
    public static partial void HandlerStarted(ILogger logger, string handler, string queue, string subscription, string filters, int maxConcurrency);

    [LoggerMessage(2, LogLevel.Warning, "Handler {Handler} failed on message {MessageId} ('{Event}', attempt {Attempt}); it will be delivered again after the subscription's backoff delay")]
    public static partial void HandlerFailed(ILogger logger, Exception error, string handler, Guid messageId, string @event, int attempt);

    [LoggerMessage(3, LogLevel.Error, "Handler {Handler} failed on message {MessageId} ('{Event}') on its last attempt ({Attempt}); the message goes to the dead-letter queue")]
    public static partial void HandlerFailedLastAttempt(ILogger logger, Exception error, string handler, Guid messageId, string @event, int attempt);

    [LoggerMessage(4, LogLevel.Warning, "Handler {Handler} ran past its timeout of {Timeout} on message {MessageId} ('{Event}', attempt {Attempt}); the message is nacked")]
    public static partial void HandlerTimedOut(ILogger logger, string handler, TimeSpan timeout, Guid messageId, string @event, int attempt);

    [LoggerMessage(5, LogLevel.Information, "Handler {Handler} stopped: {Handled} messages handled; {Unread} prefetched and {Unfinished} unfinished messages went back to subscription '{Subscription}'")]
    public static partial void HandlerStopped(ILogger logger, string handler, long handled, int unread, int unfinished, string subscription);

    [LoggerMessage(6, LogLevel.Warning, "The host's shutdown timeout ran out with {Running} calls of handler {Handler} still running: they were cancelled, and their messages went back to subscription '{Subscription}' without using up an attempt")]
    public static partial void HandlersCancelledAtStop(ILogger logger, int running, string handler, string subscription);

    [LoggerMessage(7, LogLevel.Error, "The subscription of handler {Handler} ended while the host was running; it handles no more messages")]
    public static partial void SubscriptionEnded(ILogger logger, Exception? error, string handler);

    [LoggerMessage(8, LogLevel.Information, "Message broker started: {Queues} queues declared, {Handlers} hosted handlers")]
    public static partial void BrokerStarted(ILogger logger, int queues, int handlers);

    [LoggerMessage(9, LogLevel.Information, "Hosted handlers stopped: {Handled} messages handled; {Returned} messages went back to their durable subscriptions")]
    public static partial void HandlersStopped(ILogger logger, long handled, int returned);

    [LoggerMessage(10, LogLevel.Warning, "Handler {Handler} threw after message {MessageId} ('{Event}', attempt {Attempt}) was already settled; the exception is logged and the message is not redelivered")]
    public static partial void HandlerThrewAfterSettling(ILogger logger, Exception error, string handler, Guid messageId, string @event, int attempt);

    [LoggerMessage(12, LogLevel.Information, "Handler {Handler} stopped: {Handled} messages handled; {Unfinished} unfinished messages, and any the transport had prefetched, went back to subscription '{Subscription}'")]
    public static partial void HandlerStoppedOnTransport(ILogger logger, string handler, long handled, int unfinished, string subscription);

    [LoggerMessage(13, LogLevel.Warning, "The host's shutdown timeout ran out with {Running} calls of handler {Handler} still running: they were cancelled, and their messages went back to subscription '{Subscription}' when it detached (the transport may count that as an attempt)")]
    public static partial void HandlersCancelledAtStopOnTransport(ILogger logger, int running, string handler, string subscription);

    [LoggerMessage(11, LogLevel.Error, "Starting the hosted handlers failed; the {Started} handlers already started were stopped")]
    public static partial void StartFailed(ILogger logger, Exception error, int started);
}
