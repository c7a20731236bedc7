namespace MessageQueue.Cli.Demo;

/// <summary>
/// The payload of the demo's <c>database</c> queue: one change to one row. Immutable, because one
/// message instance is shared by every subscriber that receives it.
/// </summary>
/// <param name="Table">The table that changed.</param>
/// <param name="Id">The row's id.</param>
/// <param name="Summary">A human-readable line about the change.</param>
internal sealed record DbChange(string Table, int Id, string Summary);
