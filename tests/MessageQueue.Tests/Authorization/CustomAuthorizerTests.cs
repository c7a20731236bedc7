using FluentAssertions;
using MessageQueue.ContractTests;
using MessageQueue.ContractTests.Support;
using Xunit;

namespace MessageQueue.Tests.Authorization;

/// <summary>IBrokerAuthorizer decides what the rules do not; its decisions are cached when it says so; its failures deny.</summary>
[Trait("Guarantee", "8")]
public sealed class CustomAuthorizerTests
{
    [Fact]
    public async Task WithoutRules_ItDecidesEverything_AndACacheableDecisionIsAskedOnce()
    {
        var authorizer = new CountingAuthorizer(request => request.Event.StartsWith(request.Client, StringComparison.Ordinal) ? AuthorizationDecision.Allow() : AuthorizationDecision.Deny("not your event"));
        await using var broker = new Broker(new BrokerOptions { Authorizer = authorizer });
        await using BrokerClient ep42 = broker.Connect("ep42");

        for (int i = 0; i < 3; i++)
        {
            await ep42.PublishAsync("results", "ep42.results", new TestEvent(i));
        }

        BrokerAuthorizationException denied = (await FluentActions.Awaiting(() => ep42.PublishAsync("results", "ep41.results", new TestEvent(9)).AsTask()).Should().ThrowAsync<BrokerAuthorizationException>()).Which;
        denied.Message.Should().Contain("not your event");
        authorizer.Requests.Should().Equal(
            new AuthorizationRequest("ep42", BrokerOperation.Publish, "results", "ep42.results"),
            new AuthorizationRequest("ep42", BrokerOperation.Publish, "results", "ep41.results"));
    }

    [Fact]
    public async Task ANonCacheableDecision_IsAskedEveryTime()
    {
        var authorizer = new CountingAuthorizer(_ => AuthorizationDecision.Allow(cacheable: false));
        await using var broker = new Broker(new BrokerOptions { Authorizer = authorizer });
        await using BrokerClient client = broker.Connect("c");
        for (int i = 0; i < 3; i++)
        {
            await client.PublishAsync("q", "e", new TestEvent(i));
        }

        authorizer.Requests.Should().HaveCount(3);
    }

    [Fact]
    public async Task RulesDecideFirst_TheAuthorizerOnlyWhatTheyLeaveOpen()
    {
        var authorizer = new CountingAuthorizer(_ => AuthorizationDecision.Allow());
        var options = new BrokerOptions { Authorizer = authorizer };
        options.AuthorizationRules.Add(AuthorizationRule.DenyPublish("*", "q", "secret.*"));
        options.AuthorizationRules.Add(AuthorizationRule.AllowPublish("*", "q", "public.*"));
        await using var broker = new Broker(options);
        await using BrokerClient client = broker.Connect("c");

        await client.PublishAsync("q", "public.news", new TestEvent(1));
        await FluentActions.Awaiting(() => client.PublishAsync("q", "secret.plans", new TestEvent(2)).AsTask()).Should().ThrowAsync<BrokerAuthorizationException>();
        await client.PublishAsync("q", "other", new TestEvent(3));

        authorizer.Requests.Should().Equal(new AuthorizationRequest("c", BrokerOperation.Publish, "q", "other"));
    }

    [Fact]
    public async Task AFailingAuthorizer_Denies_WithItsErrorInside_AndTheBrokerKeepsWorking()
    {
        var authorizer = new CountingAuthorizer(_ => throw new TimeoutException("the policy service did not answer"));
        await using var broker = new Broker(new BrokerOptions { Authorizer = authorizer });
        broker.DeclareQueue<TestEvent>("q");
        await using BrokerClient client = broker.Connect("c");

        BrokerAuthorizationException denied = (await FluentActions.Awaiting(() => client.PublishAsync("q", "e", new TestEvent(1)).AsTask()).Should().ThrowAsync<BrokerAuthorizationException>()).Which;
        denied.InnerException.Should().BeOfType<TimeoutException>();
        denied.Message.Should().Contain("the custom authorizer failed (TimeoutException: the policy service did not answer)");
        broker.GetSnapshot().Queue("q").Published.Should().Be(0);
        await broker.PublishAsync("q", "e", new TestEvent(2));
    }

    [Fact]
    public async Task AnAsynchronousAuthorizer_IsAwaitedByPublishAsync_AndTryPublishSaysItCannotWait()
    {
        var authorizer = new CountingAuthorizer(_ => AuthorizationDecision.Allow(cacheable: false));

        // The authorizer's decisions wait here, as for a remote policy service. The calls under test pass it no token
        // that the end of the test cancels, so it is the gate's disposal that lets them go: on every path, a failed
        // assertion included, and nothing disposed below waits for a decision in the meantime.
        using var policyService = new TestGate("the custom authorizer's decisions");
        await using var broker = new Broker(new BrokerOptions { Authorizer = authorizer });
        await using BrokerClient client = broker.Connect("c");
        await using Subscription<TestEvent> reader = await client.SubscribeAsync<TestEvent>("q", "#");

        authorizer.Gate = policyService;
        ValueTask<PublishReceipt> publishing = client.PublishAsync("q", "e", new TestEvent(1));
        publishing.IsCompleted.Should().BeFalse("the authorizer has not decided yet");
        FluentActions.Invoking(() => client.TryPublish("q", "e", new TestEvent(2), out _)).Should().Throw<InvalidOperationException>().WithMessage("*cannot wait for the custom authorizer*");
        policyService.Open();

        await publishing.OrHang("the publish, once the authorizer decided");
        (await reader.ReadAsync().OrHang("the published message")).Payload.Number.Should().Be(1);
        reader.TryRead(out _).Should().BeFalse("the TryPublish published nothing");
    }

    private sealed class CountingAuthorizer(Func<AuthorizationRequest, AuthorizationDecision> decide) : IBrokerAuthorizer
    {
        private readonly List<AuthorizationRequest> _requests = [];

        /// <summary>When set, each decision waits at it: an authorizer that asks a remote policy service.</summary>
        public TestGate? Gate { get; set; }

        public IReadOnlyList<AuthorizationRequest> Requests
        {
            get
            {
                lock (_requests)
                {
                    return [.. _requests];
                }
            }
        }

        public async ValueTask<AuthorizationDecision> AuthorizeAsync(AuthorizationRequest request, CancellationToken cancellationToken)
        {
            lock (_requests)
            {
                _requests.Add(request);
            }

            if (Gate is { } gate)
            {
                await gate.PassAsync(cancellationToken);
            }

            return decide(request);
        }
    }
}
