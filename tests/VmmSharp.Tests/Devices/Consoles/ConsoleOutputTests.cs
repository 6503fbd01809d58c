using System.Diagnostics;
using VmmSharp.Devices.Consoles;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Devices.Consoles;

public class ConsoleOutputTests
{
    private const int SmallCapacity = ConsoleOutput.SpaceThreshold;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public void Bytes_reach_the_sink_in_order_across_many_wraps_of_the_buffer()
    {
        using var sink = new GatedSink(open: true);
        using var output = new ConsoleOutput(sink, SmallCapacity);
        byte[] data = new byte[20_000];
        new Random(1).NextBytes(data);

        using var space = new ManualResetEventSlim();
        output.SpaceAvailable += space.Set;

        // As a device that keeps what does not fit: offer it again once the output says there is room.
        int sent = 0;
        var clock = Stopwatch.StartNew();
        while (sent < data.Length && clock.Elapsed < Bound)
        {
            space.Reset();
            int taken = output.TryWrite(data.AsSpan(sent, Math.Min(data.Length - sent, 100)));
            if (taken == 0)
            {
                space.Wait(TimeSpan.FromMilliseconds(100), TestContext.Current.CancellationToken);
            }
            sent += taken;
        }

        Assert.True(output.Flush(Bound));
        Assert.Equal(data, sink.Written);
        Assert.Equal(0, output.DroppedBytes);
        Assert.Equal(data.Length, output.WrittenBytes);
    }

    [Fact]
    public void Write_never_waits_for_a_sink_that_blocks_forever_and_memory_stays_bounded()
    {
        using var sink = new GatedSink();
        using var output = new ConsoleOutput(sink, SmallCapacity);
        byte[] chunk = new byte[10_000];

        var clock = Stopwatch.StartNew();
        long taken = 0;
        for (int i = 0; i < 100; i++)
        {
            taken += output.Write(chunk);
        }
        clock.Stop();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"100 writes took {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(SmallCapacity, taken);
        Assert.Equal(0, output.FreeSpace);
        Assert.Equal((100 * chunk.Length) - SmallCapacity, output.DroppedBytes);
    }

    [Fact]
    public void Dispose_returns_within_its_bound_when_the_sink_blocks_forever()
    {
        using var sink = new GatedSink();
        var output = new ConsoleOutput(sink, SmallCapacity);
        output.Write("stuck"u8);
        Assert.True(SpinWait.SpinUntil(() => sink.BlockedWrites == 1, Bound));

        var clock = Stopwatch.StartNew();
        output.Dispose();
        clock.Stop();

        Assert.True(clock.Elapsed < ConsoleOutput.DisposeDrainTimeout + TimeSpan.FromSeconds(1), $"Dispose took {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(0, output.Write("after"u8));
        Assert.Equal(5, output.DroppedBytes);
    }

    [Fact]
    public void Flush_gives_up_after_its_timeout_on_a_blocked_sink()
    {
        using var sink = new GatedSink();
        using var output = new ConsoleOutput(sink, SmallCapacity);
        output.Write("x"u8);

        Assert.False(output.Flush(TimeSpan.FromMilliseconds(100)));
        sink.Open();
        Assert.True(output.Flush(Bound));
    }

    [Fact]
    public void Space_available_is_raised_when_a_full_buffer_drains()
    {
        using var sink = new GatedSink();
        using var output = new ConsoleOutput(sink, SmallCapacity);
        using var raised = new ManualResetEventSlim();
        output.SpaceAvailable += raised.Set;
        output.Write(new byte[SmallCapacity]);
        Assert.False(raised.Wait(100, TestContext.Current.CancellationToken));

        sink.Open();

        Assert.True(raised.Wait(Bound, TestContext.Current.CancellationToken));
        Assert.True(output.FreeSpace >= ConsoleOutput.SpaceThreshold);
    }

    [Fact]
    public void A_failing_sink_drops_output_and_the_buffer_keeps_draining()
    {
        var closed = new MemoryStream();
        closed.Dispose();
        using var output = new ConsoleOutput(closed, SmallCapacity);

        output.Write("lost"u8);

        Assert.True(output.Flush(Bound));
        Assert.True(output.SinkFailed);
        Assert.Equal(4, output.DroppedBytes);
        Assert.Equal(SmallCapacity, output.FreeSpace);
    }

    [Fact]
    public void Flush_after_dispose_throws()
    {
        var output = new ConsoleOutput(Stream.Null, SmallCapacity);
        output.Dispose();
        Assert.Throws<ObjectDisposedException>(() => output.Flush(TimeSpan.Zero));
    }

    [Fact]
    public void Capacity_below_the_space_threshold_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConsoleOutput(Stream.Null, ConsoleOutput.SpaceThreshold - 1));
    }
}
