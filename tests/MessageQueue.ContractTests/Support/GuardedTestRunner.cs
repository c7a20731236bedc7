using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace MessageQueue.ContractTests.Support;

/// <summary>
/// Runs one test (a fact, or one row of a theory) <see cref="TestRun.Repeat"/> times, each run with a new instance
/// of the test class, and reports it as one result: the first run that fails fails the test, and its message says
/// which run it was. Each run is bounded by <see cref="TestRun.HangGuard"/>: a run that does not finish by then
/// fails the test with what it was waiting for (<see cref="TestRun.DescribeHang"/>), the gates it holds are opened
/// so that what it left waiting can finish, and the test run goes on with the next test.
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
        int runs = TestRun.Repeat;
        decimal seconds = 0;
        for (int number = 1; number <= runs && !CancellationTokenSource.IsCancellationRequested; number++)
        {
            var run = new TestRun(DisplayName, number, runs);
            var runAggregator = new ExceptionAggregator();
            Task<decimal> invocation = InvokeAsync(run, runAggregator);
            try
            {
                seconds += await invocation.WaitAsync(TestRun.HangGuard);
            }
            catch (TimeoutException)
            {
                aggregator.Add(new TestHungException(run.DescribeHang()));
                run.OpenGates();
                return seconds + (decimal)TestRun.HangGuard.TotalSeconds;
            }

            if (runAggregator.HasExceptions)
            {
                Exception failure = runAggregator.ToException();
                aggregator.Add(runs == 1 ? failure : new RepeatedRunFailedException(number, runs, failure));
                break;
            }
        }

        return seconds;
    }

    // A method of its own, so that the run it enters flows into the test's code and no further than this call.
    private Task<decimal> InvokeAsync(TestRun run, ExceptionAggregator runAggregator)
    {
        TestRun.Enter(run);
        return new XunitTestInvoker(Test, MessageBus, TestClass, ConstructorArguments, TestMethod, TestMethodArguments, BeforeAfterAttributes, runAggregator, CancellationTokenSource).RunAsync();
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
