namespace MessageQueue.ContractTests;

/// <summary>The payload the contract suite publishes: immutable, as the docs recommend.</summary>
public sealed record TestEvent(int Number, string Text = "");
