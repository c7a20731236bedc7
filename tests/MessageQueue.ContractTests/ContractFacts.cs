using System.Reflection;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace MessageQueue.ContractTests;

/// <summary>
/// Behaviours of the contract that a transport may genuinely be unable to offer. A contract test that relies on
/// one says so with <see cref="RequiresCapabilityAttribute"/>; a target that lacks it declares that in its
/// <c>SkipReason</c>, and the test is reported as skipped with the reason, never weakened.
/// </summary>
public enum ContractCapability
{
    /// <summary>
    /// A delivery that reached a consumer's buffer but was never read does not count as an attempt when the
    /// consumer leaves (the in-memory broker takes unread deliveries back uncounted).
    /// </summary>
    UnreadDeliveriesKeepTheirAttempt,
}

/// <summary>Marks a contract test that holds only where the target has <paramref name="capability"/>.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class RequiresCapabilityAttribute(ContractCapability capability) : Attribute
{
    /// <summary>The capability the test relies on.</summary>
    public ContractCapability Capability { get; } = capability;
}

/// <summary>
/// A contract fact: runs like <see cref="FactAttribute"/>, unless the concrete test class's public static
/// <c>string? SkipReason(MethodInfo test)</c> returns a reason (its server is unreachable outside CI, or it lacks
/// a capability the test requires), in which case the test is reported as skipped with that reason.
/// </summary>
[XunitTestCaseDiscoverer("MessageQueue.ContractTests.ContractFactDiscoverer", "MessageQueue.ContractTests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class ContractFactAttribute : FactAttribute
{
}

/// <summary>A contract theory: see <see cref="ContractFactAttribute"/>.</summary>
[XunitTestCaseDiscoverer("MessageQueue.ContractTests.ContractTheoryDiscoverer", "MessageQueue.ContractTests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class ContractTheoryAttribute : TheoryAttribute
{
}

/// <summary>Asks the concrete test class whether a contract test applies to its target.</summary>
internal static class ContractSkips
{
    public static string? Reason(ITestMethod testMethod)
    {
        Type? type = testMethod.TestClass.Class.ToRuntimeType();
        MethodInfo? method = testMethod.Method.ToRuntimeMethod();
        MethodInfo? skipReason = type?.GetMethod("SkipReason", BindingFlags.Public | BindingFlags.Static | BindingFlags.FlattenHierarchy, [typeof(MethodInfo)]);
        return method is null || skipReason is null ? null : (string?)skipReason.Invoke(null, [method]);
    }

    public static IXunitTestCase Skipped(IMessageSink sink, ITestFrameworkDiscoveryOptions options, ITestMethod testMethod, string reason) =>
        new XunitSkippedDataRowTestCase(sink, options.MethodDisplayOrDefault(), options.MethodDisplayOptionsOrDefault(), testMethod, reason);
}

/// <summary>Discovers <see cref="ContractFactAttribute"/> tests.</summary>
public sealed class ContractFactDiscoverer(IMessageSink diagnosticMessageSink) : IXunitTestCaseDiscoverer
{
    private readonly FactDiscoverer _inner = new(diagnosticMessageSink);

    /// <inheritdoc/>
    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute) =>
        ContractSkips.Reason(testMethod) is { } reason
            ? [ContractSkips.Skipped(diagnosticMessageSink, discoveryOptions, testMethod, reason)]
            : _inner.Discover(discoveryOptions, testMethod, factAttribute);
}

/// <summary>Discovers <see cref="ContractTheoryAttribute"/> tests.</summary>
public sealed class ContractTheoryDiscoverer(IMessageSink diagnosticMessageSink) : IXunitTestCaseDiscoverer
{
    private readonly TheoryDiscoverer _inner = new(diagnosticMessageSink);

    /// <inheritdoc/>
    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute) =>
        ContractSkips.Reason(testMethod) is { } reason
            ? [ContractSkips.Skipped(diagnosticMessageSink, discoveryOptions, testMethod, reason)]
            : _inner.Discover(discoveryOptions, testMethod, factAttribute);
}
