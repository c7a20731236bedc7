using System.Threading.Channels;

namespace MessageQueue.Benchmarks;

/// <summary>The baseline every suite measures against: a bounded single-producer/single-consumer channel of capacity 1024.</summary>
internal static class RawChannel
{
    public const int Capacity = 1024;

    public static Channel<Payload> Create() =>
        Channel.CreateBounded<Payload>(new BoundedChannelOptions(Capacity) { SingleReader = true, SingleWriter = true });

    /// <summary>One task writes <paramref name="count"/> items, another reads them all.</summary>
    public static async Task MoveAsync(Payload item, int count)
    {
        Channel<Payload> channel = Create();
        Task consumer = Task.Run(async () =>
        {
            for (int i = 0; i < count; i++)
            {
                await channel.Reader.ReadAsync();
            }
        });
        for (int i = 0; i < count; i++)
        {
            await channel.Writer.WriteAsync(item);
        }

        await consumer;
    }
}
