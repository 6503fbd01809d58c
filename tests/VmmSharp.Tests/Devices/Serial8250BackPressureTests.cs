using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Legacy;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Devices;

/// <summary>What a guest sees of the 8250 when its console falls behind: THRE stays clear, then comes back with its interrupt.</summary>
public sealed class Serial8250BackPressureTests : IDisposable
{
    private const ushort Thr = 0, Ier = 1, Iir = 2, Mcr = 4, Lsr = 5;
    private const byte LsrThreTemt = 0x60;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private readonly GatedSink _sink = new();
    private readonly ConsoleOutput _output;
    private readonly RecordingIrqLine _irq = new();
    private readonly Serial8250 _uart;

    public Serial8250BackPressureTests()
    {
        _output = new ConsoleOutput(_sink, ConsoleOutput.SpaceThreshold);
        _uart = new Serial8250(_output, _irq);
    }

    public void Dispose()
    {
        _uart.Dispose();
        _sink.Dispose();
        _output.Dispose();
    }

    private byte In(ushort offset)
    {
        Span<byte> data = stackalloc byte[1];
        _uart.Read(offset, data);
        return data[0];
    }

    private void Out(ushort offset, byte value)
    {
        Span<byte> data = stackalloc byte[1];
        data[0] = value;
        _uart.Write(offset, data);
    }

    /// <summary>Transmits as a polling driver does, until THRE stays clear; returns how many bytes went out.</summary>
    private int FillUntilThreClears()
    {
        int sent = 0;
        while ((In(Lsr) & LsrThreTemt) != 0)
        {
            Out(Thr, (byte)sent);
            sent++;
            Assert.True(sent <= ConsoleOutput.SpaceThreshold, "THRE never cleared with the console blocked");
        }
        return sent;
    }

    [Fact]
    public void THRE_and_TEMT_stay_clear_while_the_console_cannot_take_a_FIFO_more()
    {
        int sent = FillUntilThreClears();

        Assert.InRange(_output.FreeSpace, 0, Serial8250.TransmitFifoSize - 1);
        Assert.Equal(0, In(Lsr) & LsrThreTemt);
        Assert.Equal(0, _output.DroppedBytes);
        Assert.True(sent > ConsoleOutput.SpaceThreshold - Serial8250.TransmitFifoSize - 1);
    }

    [Fact]
    public void The_THRE_interrupt_comes_again_once_the_console_drains()
    {
        Out(Mcr, 0x08); // OUT2
        Out(Ier, 0x02); // THRE interrupt
        In(Iir); // acknowledge the first one
        FillUntilThreClears();
        Assert.False(_irq.Level);
        Assert.Equal(0x01, In(Iir) & 0x0f); // no interrupt pending while THR is full

        _sink.Open();

        Assert.True(SpinWait.SpinUntil(() => _irq.Level, Bound), "the THRE interrupt did not come back");
        Assert.Equal(LsrThreTemt, In(Lsr) & LsrThreTemt);
        Assert.Equal(0x02, In(Iir) & 0x0f);
    }

    [Fact]
    public void Enabling_the_THRE_interrupt_while_THR_is_full_raises_nothing_until_it_drains()
    {
        Out(Mcr, 0x08);
        FillUntilThreClears();

        Out(Ier, 0x02);
        Assert.False(_irq.Level);

        _sink.Open();
        Assert.True(SpinWait.SpinUntil(() => _irq.Level, Bound), "the THRE interrupt did not come once THR emptied");
    }

    [Fact]
    public void Bytes_written_while_THRE_is_clear_are_dropped_and_counted_without_growing_memory()
    {
        FillUntilThreClears();
        long before = _output.DroppedBytes;

        for (int i = 0; i < 1000; i++)
        {
            Out(Thr, 0x55);
        }

        Assert.True(_output.DroppedBytes - before >= 1000 - Serial8250.TransmitFifoSize);
        Assert.Equal(0, _output.FreeSpace);
    }

    [Fact]
    public void A_disposed_UART_no_longer_drives_its_line_when_the_console_drains()
    {
        Out(Mcr, 0x08);
        Out(Ier, 0x02);
        In(Iir);
        FillUntilThreClears();
        int levels = _irq.Levels.Count;

        _uart.Dispose();
        _sink.Open();

        Assert.True(_output.Flush(Bound));
        Thread.Sleep(50);
        Assert.Equal(levels, _irq.Levels.Count);
    }

    [Fact]
    public void Writing_THR_allocates_nothing()
    {
        using var output = new ConsoleOutput(Stream.Null);
        using var uart = new Serial8250(output, _irq);
        Span<byte> data = stackalloc byte[1];
        data[0] = (byte)'x';
        for (int i = 0; i < 1000; i++)
        {
            uart.Write(Thr, data); // warm up
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            uart.Write(Thr, data);
            uart.Read(Lsr, data);
            data[0] = (byte)'x';
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
    }
}
