using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace MessageQueue.ContractTests.Support;

/// <summary>
/// Runs one test (a fact, or one row of a theory) through <see cref="TestRun.RunAsync"/>: <see cref="TestRun.Repeat"/>
/// times, each run with a new instance of the test class and bounded by <see cref="TestRun.HangGuard"/>, reported
/// as one result.
/// </summary>
public sealed class GuardedTestRunner(
    ITest test,
    IMessageBus messageBus,
    Type testClass,
    object[] constructorArguments,
    MethodInfo testMethod,
    object[] testMethodArguments,
    string skipReason,
    IReadOnlyList<BeforeAfterTestAttribute> beforeAfterAttributes,
    ExceptionAggregator aggregator,
    CancellationTokenSource cancellationTokenSource)
    : XunitTestRunner(test, messageBus, testClass, constructorArguments, testMethod, testMethodArguments, skipReason, beforeAfterAttributes, aggregator, cancellationTokenSource)
{
    /// <inheritdoc/>
    protected override async Task<decimal> InvokeTestMethodAsync(ExceptionAggregator aggregator)
    {
        (decimal seconds, Exception? failure) = await TestRun.RunAsync(
            DisplayName, TestRun.Repeat, TestRun.HangGuard, TimeProvider.System, RunOnceAsync, CancellationTokenSource.Token);
        if (failure is not null)
        {
            aggregator.Add(failure);
        }

        return seconds;
    }

    private async Task<(decimal Seconds, Exception? Failure)> RunOnceAsync()
    {
        var runAggregator = new ExceptionAggregator();
        decimal seconds = await new XunitTestInvoker(Test, MessageBus, TestClass, ConstructorArguments, TestMethod, TestMethodArguments, BeforeAfterAttributes, runAggregator, CancellationTokenSource).RunAsync();
        return (seconds, runAggregator.HasExceptions ? runAggregator.ToException() : null);
    }
}

/// <summary>A test whose run did not finish within <see cref="TestRun.HangGuard"/>; the message says what it waited for.</summary>
public sealed class TestHungException(string message) : Exception(message);

/// <summary>One run of a repeated test failed; the inner exception is that run's failure.</summary>
public sealed class RepeatedRunFailedException(int run, int runs, Exception failure)
    : Exception($"Run {run} of {runs} failed; the {run - 1} runs before it passed.", failure);

/// <summary>Runs a fact through <see cref="GuardedTestRunner"/>.</summary>
public sealed class GuardedTestCaseRunner(
    IXunitTestCase testCase,
    string displayName,
    string skipReason,
    object[] constructorArguments,
    object[] testMethodArguments,
    IMessageBus messageBus,
    ExceptionAggregator aggregator,
    CancellationTokenSource cancellationTokenSource)
    : XunitTestCaseRunner(testCase, displayName, skipReason, constructorArguments, testMethodArguments, messageBus, aggregator, cancellationTokenSource)
{
    /// <inheritdoc/>
    protected override XunitTestRunner CreateTestRunner(ITest test, IMessageBus messageBus, Type testClass, object[] constructorArguments, MethodInfo testMethod, object[] testMethodArguments, string skipReason, IReadOnlyList<BeforeAfterTestAttribute> beforeAfterAttributes, ExceptionAggregator aggregator, CancellationTokenSource cancellationTokenSource) =>
        new GuardedTestRunner(test, messageBus, testClass, constructorArguments, testMethod, testMethodArguments, skipReason, beforeAfterAttributes, new ExceptionAggregator(aggregator), cancellationTokenSource);
}

/// <summary>Runs each row of a theory whose data is enumerated at run time through <see cref="GuardedTestRunner"/>.</summary>
public sealed class GuardedTheoryTestCaseRunner(
    IXunitTestCase testCase,
    string displayName,
    string skipReason,
    object[] constructorArguments,
    IMessageSink diagnosticMessageSink,
    IMessageBus messageBus,
    ExceptionAggregator aggregator,
    CancellationTokenSource cancellationTokenSource)
    : XunitTheoryTestCaseRunner(testCase, displayName, skipReason, constructorArguments, diagnosticMessageSink, messageBus, aggregator, cancellationTokenSource)
{
    /// <inheritdoc/>
    protected override XunitTestRunner CreateTestRunner(ITest test, IMessageBus messageBus, Type testClass, object[] constructorArguments, MethodInfo testMethod, object[] testMethodArguments, string skipReason, IReadOnlyList<BeforeAfterTestAttribute> beforeAfterAttributes, ExceptionAggregator aggregator, CancellationTokenSource cancellationTokenSource) =>
        new GuardedTestRunner(test, messageBus, testClass, constructorArguments, testMethod, testMethodArguments, skipReason, beforeAfterAttributes, new ExceptionAggregator(aggregator), cancellationTokenSource);
}
