using VmmSharp.Devices.Legacy;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Devices;

public sealed class Serial8250StateTests : IDisposable
{
    private const ushort Rbr = 0, Ier = 1, Iir = 2, Lcr = 3, Mcr = 4, Lsr = 5, Scr = 7;

    private readonly CapturedConsole _console = new();
    private readonly RecordingIrqLine _irq = new();
    private readonly RecordingIrqLine _freshIrq = new();
    private readonly Serial8250 _uart;
    private readonly Serial8250 _fresh;

    public Serial8250StateTests()
    {
        _uart = new Serial8250(_console.Output, _irq);
        _fresh = new Serial8250(_console.Output, _freshIrq);
    }

    public void Dispose()
    {
        _uart.Dispose();
        _fresh.Dispose();
        _console.Dispose();
    }

    private static byte In(Serial8250 uart, ushort offset)
    {
        Span<byte> data = stackalloc byte[1];
        uart.Read(offset, data);
        return data[0];
    }

    private static void Out(Serial8250 uart, ushort offset, byte value) => uart.Write(offset, [value]);

    [Fact]
    public void Registers_and_fifo_read_back_the_same_after_restore()
    {
        Out(_uart, Lcr, 0x80);
        Out(_uart, 0, 0x01); // divisor 0x0301
        Out(_uart, 1, 0x03);
        Out(_uart, Lcr, 0x1b);
        Out(_uart, Mcr, 0x0b);
        Out(_uart, Scr, 0x5a);
        Out(_uart, 2, 0x01); // FIFO on
        Out(_uart, Ier, 0x01);
        _uart.EnqueueInput("abc"u8);
        Assert.Equal((byte)'a', In(_uart, Rbr));

        StateRoundTrip.Copy(_uart, _fresh);

        Assert.Equal(0x1b, In(_fresh, Lcr));
        Assert.Equal(0x0b, In(_fresh, Mcr));
        Assert.Equal(0x5a, In(_fresh, Scr));
        Assert.Equal(0x01, In(_fresh, Ier));
        Assert.Equal(0xc4, In(_fresh, Iir)); // receive data pending, FIFO enabled
        Assert.Equal((byte)'b', In(_fresh, Rbr));
        Assert.Equal((byte)'c', In(_fresh, Rbr));
        Assert.Equal(0x60, In(_fresh, Lsr)); // FIFO empty now
        Out(_fresh, Lcr, 0x9b);
        Assert.Equal(0x01, In(_fresh, 0));
        Assert.Equal(0x03, In(_fresh, 1));
    }

    [Fact]
    public void A_pending_interrupt_is_raised_again_on_the_restored_line()
    {
        Out(_uart, Mcr, 0x08); // OUT2
        Out(_uart, Ier, 0x01);
        _uart.EnqueueInput("x"u8);
        Assert.True(_irq.Level);

        StateRoundTrip.Copy(_uart, _fresh);

        Assert.True(_freshIrq.Level);
    }

    [Fact]
    public void A_paused_uart_takes_no_input_until_resumed()
    {
        _uart.Pause();
        Assert.Equal(0, _uart.EnqueueInput("x"u8));
        Assert.Equal(0x60, In(_uart, Lsr));
        _uart.Resume();
        Assert.Equal(1, _uart.EnqueueInput("x"u8));
    }

    [Fact]
    public void A_fifo_longer_than_the_uarts_is_refused()
    {
        byte[] state = StateRoundTrip.Save(_uart);
        // The FIFO is the last field: its length, then the bytes.
        byte[] longer = [.. state[..^4], .. BitConverter.GetBytes(Serial8250.FifoCapacity + 1), .. new byte[Serial8250.FifoCapacity + 1]];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(longer.AsSpan(2), longer.Length - 6);
        Assert.Contains("receive fifo", StateRoundTrip.Refused(_fresh, longer), StringComparison.Ordinal);
    }

    [Fact]
    public void An_ier_with_reserved_bits_is_refused()
        => Assert.Contains("ier", StateRoundTrip.Refused(_fresh, StateRoundTrip.WithByte(StateRoundTrip.Save(_uart), 0, 0xf0)), StringComparison.Ordinal);

    [Fact]
    public void A_truncated_state_is_refused()
        => Assert.Contains("receive fifo", StateRoundTrip.Refused(_fresh, StateRoundTrip.Truncated(StateRoundTrip.Save(_uart), 2)), StringComparison.Ordinal);

    [Fact]
    public void An_unknown_version_is_refused()
        => Assert.Contains("version 9", StateRoundTrip.Refused(_fresh, StateRoundTrip.WithVersion(StateRoundTrip.Save(_uart), 9)), StringComparison.Ordinal);
}
