using VmmSharp.Devices.Legacy;
using Xunit;

namespace VmmSharp.Tests.Devices;

public class I8042Tests
{
    private int _resets;
    private readonly RecordingIrqLine _keyboardIrq = new();
    private readonly I8042 _controller;

    public I8042Tests()
    {
        _controller = new I8042(() => _resets++, _keyboardIrq);
    }

    private void Command(byte command) => _controller.CommandPort.Write(0, [command]);

    private void Data(byte value) => _controller.DataPort.Write(0, [value]);

    private byte Status()
    {
        Span<byte> data = stackalloc byte[1];
        _controller.CommandPort.Read(0, data);
        return data[0];
    }

    private byte ReadData()
    {
        Span<byte> data = stackalloc byte[1];
        _controller.DataPort.Read(0, data);
        return data[0];
    }

    [Fact]
    public void Self_test_answers_0x55()
    {
        Command(0xaa);

        Assert.Equal(0x01, Status() & 0x01);
        Assert.Equal(0x55, ReadData());
        Assert.Equal(0x00, Status() & 0x01);
    }

    [Fact]
    public void Interface_tests_answer_no_fault()
    {
        Command(0xab);
        Assert.Equal(0x00, ReadData());
        Command(0xa9);
        Assert.Equal(0x00, ReadData());
    }

    [Fact]
    public void Command_byte_written_with_0x60_reads_back_with_0x20()
    {
        Command(0x60);
        Data(0x65);
        Command(0x20);

        Assert.Equal(0x65, ReadData());
    }

    [Fact]
    public void Disable_and_enable_commands_set_and_clear_command_byte_bits()
    {
        Command(0x60);
        Data(0x00);
        Command(0xad);
        Command(0xa7);
        Command(0x20);
        Assert.Equal(0x30, ReadData());

        Command(0xae);
        Command(0xa8);
        Command(0x20);
        Assert.Equal(0x00, ReadData());
    }

    [Fact]
    public void Output_port_written_with_0xd1_reads_back_with_0xd0()
    {
        Command(0xd1);
        Data(0xdf);
        Command(0xd0);

        Assert.Equal(0xdf, ReadData());
        Assert.Equal(0, _resets);
    }

    [Fact]
    public void Command_0xfe_pulses_the_reset_line()
    {
        Command(0xfe);
        Assert.Equal(1, _resets);
    }

    [Fact]
    public void Clearing_output_port_bit_0_resets()
    {
        Command(0xd1);
        Data(0xfe);
        Assert.Equal(1, _resets);
    }

    [Fact]
    public void Pulse_commands_that_leave_bit_0_alone_do_not_reset()
    {
        Command(0xff);
        Assert.Equal(0, _resets);
    }

    [Fact]
    public void Status_reports_whether_the_last_write_was_a_command()
    {
        Command(0xa7);
        Assert.Equal(0x08, Status() & 0x08);
        Command(0x60);
        Data(0x47);
        Assert.Equal(0x00, Status() & 0x08);
    }

    [Fact]
    public void Aux_loopback_returns_the_byte_flagged_as_aux_data()
    {
        Command(0xd3);
        Data(0x5a);

        Assert.Equal(0x21, Status() & 0x21);
        Assert.Equal(0x5a, ReadData());
    }

    [Fact]
    public void Keyboard_reset_answers_ack_then_self_test_passed_and_raises_IRQ_1()
    {
        Data(0xff);

        Assert.Equal(0xfa, ReadData());
        Assert.Equal(0xaa, ReadData());
        Assert.Equal([true, false, true, false], _keyboardIrq.Levels);
    }

    [Fact]
    public void Keyboard_interrupt_is_not_raised_when_the_command_byte_disables_it()
    {
        Command(0x60);
        Data(0x00);
        Data(0xf2);

        Assert.Equal(0xfa, ReadData());
        Assert.Empty(_keyboardIrq.Levels);
    }

    [Fact]
    public void Enabling_the_keyboard_interrupt_with_a_byte_waiting_raises_IRQ_1()
    {
        Command(0x60);
        Data(0x00); // interrupts off
        Command(0xaa); // self-test: 0x55 waits in the output buffer
        Assert.Empty(_keyboardIrq.Levels);

        Command(0x60);
        Data(0x01); // keyboard interrupt on, with the byte still there

        Assert.True(_keyboardIrq.Level);
        Assert.Equal(0x55, ReadData());
        Assert.False(_keyboardIrq.Level);
    }

    [Fact]
    public void Disabling_the_keyboard_interrupt_lowers_IRQ_1_while_the_byte_waits()
    {
        Command(0xaa);
        Assert.True(_keyboardIrq.Level);

        Command(0x60);
        Data(0x00);

        Assert.False(_keyboardIrq.Level);
        Assert.Equal(0x01, Status() & 0x01);
    }

    [Fact]
    public void IRQ_12_follows_an_auxiliary_byte_and_IRQ_1_stays_low()
    {
        var aux = new RecordingIrqLine();
        var controller = new I8042(() => { }, _keyboardIrq, aux);
        controller.CommandPort.Write(0, [0xd3]); // aux loopback
        controller.DataPort.Write(0, [0x5a]);

        Assert.True(aux.Level);
        Assert.Empty(_keyboardIrq.Levels);
        Span<byte> data = stackalloc byte[1];
        controller.DataPort.Read(0, data);
        Assert.False(aux.Level);
    }

    [Fact]
    public void Ports_read_all_ones_beyond_offset_0()
    {
        Span<byte> data = stackalloc byte[1];
        _controller.DataPort.Read(1, data);
        Assert.Equal(0xff, data[0]);
    }

    [Fact]
    public void Random_guest_accesses_never_throw()
    {
        var controller = new I8042(() => { });
        var random = new Random(8042);
        byte[] buffer = new byte[4];
        for (int i = 0; i < 5000; i++)
        {
            random.NextBytes(buffer);
            var port = random.Next(2) == 0 ? controller.DataPort : controller.CommandPort;
            int width = 1 << random.Next(0, 3);
            if (random.Next(2) == 0)
            {
                port.Write((ushort)random.Next(0, 2), buffer.AsSpan(0, width));
            }
            else
            {
                port.Read((ushort)random.Next(0, 2), buffer.AsSpan(0, width));
            }
        }
    }
}
