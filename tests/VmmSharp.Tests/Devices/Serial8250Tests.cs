using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Legacy;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Devices;

public sealed class Serial8250Tests : IDisposable
{
    private const ushort Thr = 0, Ier = 1, Iir = 2, Fcr = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;

    private readonly CapturedConsole _console = new();
    private readonly RecordingIrqLine _irq = new();
    private readonly Serial8250 _uart;

    public Serial8250Tests()
    {
        _uart = new Serial8250(_console.Output, _irq);
    }

    public void Dispose()
    {
        _uart.Dispose();
        _console.Dispose();
    }

    private byte In(ushort offset)
    {
        Span<byte> data = stackalloc byte[1];
        _uart.Read(offset, data);
        return data[0];
    }

    private void Out(ushort offset, byte value) => _uart.Write(offset, [value]);

    [Fact]
    public void Bytes_written_to_THR_reach_the_sink()
    {
        foreach (byte b in "hi\n"u8)
        {
            Out(Thr, b);
        }

        Assert.Equal("hi\n"u8.ToArray(), _console.Bytes);
    }

    [Fact]
    public void LSR_always_reports_transmitter_empty()
    {
        Assert.Equal(0x60, In(Lsr));
        Out(Thr, (byte)'x');
        Assert.Equal(0x60, In(Lsr));
    }

    [Fact]
    public void LSR_reports_data_ready_while_input_waits()
    {
        _uart.EnqueueInput("a"u8);

        Assert.Equal(0x61, In(Lsr));
        Assert.Equal((byte)'a', In(Thr));
        Assert.Equal(0x60, In(Lsr));
    }

    [Fact]
    public void Divisor_latch_is_reached_through_offsets_0_and_1_while_DLAB_is_set()
    {
        Out(Ier, 0x05);
        Out(Lcr, 0x83);
        Out(0, 0x01);
        Out(1, 0x02);

        Assert.Equal(0x01, In(0));
        Assert.Equal(0x02, In(1));
        Out(Lcr, 0x03);
        Assert.Equal(0x05, In(Ier));
        Assert.Empty(_console.Bytes);
    }

    [Fact]
    public void Scratch_register_keeps_its_value()
    {
        Out(Scr, 0xa5);
        Assert.Equal(0xa5, In(Scr));
    }

    [Fact]
    public void IER_keeps_only_its_four_enable_bits()
    {
        Out(Ier, 0xff);
        Assert.Equal(0x0f, In(Ier));
    }

    [Fact]
    public void Loopback_returns_transmitted_bytes_to_the_receiver_and_not_the_sink()
    {
        Out(Mcr, 0x10);
        Out(Thr, 0x5a);

        Assert.Equal(0x61, In(Lsr));
        Assert.Equal(0x5a, In(Thr));
        Assert.Empty(_console.Bytes);
    }

    [Fact]
    public void Loopback_maps_MCR_outputs_onto_MSR_inputs_as_Linux_probe_expects()
    {
        Out(Mcr, 0x1a); // LOOP | OUT2 | RTS

        Assert.Equal(0x90, In(Msr) & 0xf0); // DCD | CTS
    }

    [Fact]
    public void MSR_reports_a_ready_cable_outside_loopback()
    {
        Assert.Equal(0xb0, In(Msr));
    }

    [Fact]
    public void MSR_delta_bits_record_changes_and_clear_on_read()
    {
        Out(Mcr, 0x10); // loopback with every output low: all status bits change
        Assert.Equal(0x0b, In(Msr) & 0x0f); // DCTS, DDSR, DDCD; RI stayed low, so no TERI
        Assert.Equal(0, In(Msr) & 0x0f);
    }

    [Fact]
    public void Received_bytes_come_out_in_order_through_the_FIFO()
    {
        Assert.Equal(3, _uart.EnqueueInput("xyz"u8));

        Assert.Equal((byte)'x', In(Thr));
        Assert.Equal((byte)'y', In(Thr));
        Assert.Equal((byte)'z', In(Thr));
    }

    [Fact]
    public void Input_beyond_the_FIFO_capacity_is_refused()
    {
        byte[] input = new byte[Serial8250.FifoCapacity + 10];

        Assert.Equal(Serial8250.FifoCapacity, _uart.EnqueueInput(input));
        Assert.Equal(0, _uart.EnqueueInput([1]));
    }

    [Fact]
    public void Receive_interrupt_is_raised_when_enabled_with_OUT2_and_cleared_when_the_FIFO_drains()
    {
        Out(Mcr, 0x08); // OUT2
        Out(Ier, 0x01);
        Assert.False(_irq.Level);

        _uart.EnqueueInput("ab"u8);
        Assert.True(_irq.Level);
        Assert.Equal(0x04, In(Iir));

        In(Thr);
        Assert.True(_irq.Level);
        In(Thr);
        Assert.False(_irq.Level);
        Assert.Equal([true, false], _irq.Levels);
    }

    [Fact]
    public void Receive_interrupt_does_not_reach_the_line_without_OUT2()
    {
        Out(Ier, 0x01);
        _uart.EnqueueInput("a"u8);

        Assert.Equal(0x04, In(Iir));
        Assert.Empty(_irq.Levels);
    }

    [Fact]
    public void Setting_OUT2_delivers_an_already_pending_interrupt()
    {
        Out(Ier, 0x01);
        _uart.EnqueueInput("a"u8);
        Out(Mcr, 0x08);

        Assert.True(_irq.Level);
    }

    [Fact]
    public void Enabling_the_THRE_interrupt_raises_it_at_once()
    {
        Out(Mcr, 0x08);
        Out(Ier, 0x02);

        Assert.True(_irq.Level);
        Assert.Equal(0x02, In(Iir) & 0x0f);
    }

    [Fact]
    public void Reading_IIR_acknowledges_the_THRE_interrupt()
    {
        Out(Mcr, 0x08);
        Out(Ier, 0x02);

        Assert.Equal(0x02, In(Iir) & 0x0f);
        Assert.Equal(0x01, In(Iir) & 0x0f);
        Assert.False(_irq.Level);
    }

    [Fact]
    public void Writing_THR_raises_THRE_again()
    {
        Out(Mcr, 0x08);
        Out(Ier, 0x02);
        In(Iir);

        Out(Thr, (byte)'x');

        Assert.True(_irq.Level);
        Assert.Equal(0x02, In(Iir) & 0x0f);
    }

    [Fact]
    public void Receive_data_takes_priority_over_THRE_in_IIR()
    {
        Out(Ier, 0x03);
        _uart.EnqueueInput("a"u8);

        Assert.Equal(0x04, In(Iir) & 0x0f);
        In(Thr);
        Assert.Equal(0x02, In(Iir) & 0x0f);
    }

    [Fact]
    public void Line_status_takes_priority_over_receive_data_and_clears_on_LSR_read()
    {
        Out(Mcr, 0x10);
        Out(Ier, 0x05);
        for (int i = 0; i <= Serial8250.FifoCapacity; i++)
        {
            Out(Thr, (byte)i); // the last one overruns the FIFO
        }

        Assert.Equal(0x06, In(Iir) & 0x0f);
        Assert.Equal(0x63, In(Lsr)); // OE | DR | THRE | TEMT
        Assert.Equal(0x04, In(Iir) & 0x0f);
    }

    [Fact]
    public void Modem_status_interrupt_has_the_lowest_priority()
    {
        Out(Ier, 0x0a);
        Out(Mcr, 0x10);
        In(Iir); // acknowledges THRE

        Assert.Equal(0x00, In(Iir) & 0x0f);
        In(Msr);
        Assert.Equal(0x01, In(Iir) & 0x0f);
    }

    [Fact]
    public void IIR_reports_FIFOs_enabled_after_FCR_enables_them()
    {
        Assert.Equal(0x01, In(Iir));
        Out(Fcr, 0x01);
        Assert.Equal(0xc1, In(Iir));
    }

    [Fact]
    public void FCR_clear_receiver_discards_waiting_input()
    {
        Out(Fcr, 0x01);
        _uart.EnqueueInput("abc"u8);
        Out(Fcr, 0x03);

        Assert.Equal(0x60, In(Lsr));
    }

    [Fact]
    public void Interrupt_is_not_driven_in_loopback_mode()
    {
        Out(Mcr, 0x18); // LOOP | OUT2
        Out(Ier, 0x01);
        Out(Thr, 1);

        Assert.Equal(0x04, In(Iir) & 0x0f);
        Assert.Empty(_irq.Levels);
    }

    [Fact]
    public void Random_guest_accesses_never_throw()
    {
        var random = new Random(8250);
        byte[] buffer = new byte[4];
        for (int i = 0; i < 5000; i++)
        {
            var offset = (ushort)random.Next(0, 12);
            int width = 1 << random.Next(0, 3);
            if (random.Next(2) == 0)
            {
                random.NextBytes(buffer);
                _uart.Write(offset, buffer.AsSpan(0, width));
            }
            else
            {
                _uart.Read(offset, buffer.AsSpan(0, width));
            }
            if (i % 97 == 0)
            {
                _uart.EnqueueInput(buffer);
            }
        }
    }

    [Fact]
    public void Offsets_past_the_registers_read_all_ones()
    {
        Assert.Equal(0xff, In(8));
    }
}
