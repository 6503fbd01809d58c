using VmmSharp.Devices.Legacy;

namespace VmmSharp.Tests.Devices;

public class I8042StateTests
{
    private readonly RecordingIrqLine _irq = new();
    private readonly RecordingIrqLine _freshIrq = new();
    private readonly I8042 _controller;
    private readonly I8042 _fresh;

    public I8042StateTests()
    {
        _controller = new I8042(() => { }, _irq);
        _fresh = new I8042(() => { }, _freshIrq);
    }

    private static byte ReadData(I8042 c)
    {
        Span<byte> data = stackalloc byte[1];
        c.DataPort.Read(0, data);
        return data[0];
    }

    [Fact]
    public void Queued_bytes_and_the_command_byte_come_back()
    {
        _controller.CommandPort.Write(0, [0x60]);
        _controller.DataPort.Write(0, [0x45]); // command byte: keyboard interrupt, translation, system
        _controller.DataPort.Write(0, [0xf2]); // identify: fa ab 83
        Assert.Equal(0xfa, ReadData(_controller));

        StateRoundTrip.Copy(_controller, _fresh);

        Assert.True(_freshIrq.Level);
        Assert.Equal(0xab, ReadData(_fresh));
        Assert.Equal(0x83, ReadData(_fresh));
        _fresh.CommandPort.Write(0, [0x20]);
        Assert.Equal(0x45, ReadData(_fresh));
    }

    [Fact]
    public void A_half_done_command_takes_its_data_byte_after_restore()
    {
        _controller.CommandPort.Write(0, [0xd2]); // next data byte goes to the output buffer

        StateRoundTrip.Copy(_controller, _fresh);

        _fresh.DataPort.Write(0, [0x77]);
        Assert.Equal(0x77, ReadData(_fresh));
    }

    [Fact]
    public void A_pending_command_that_takes_no_data_is_refused()
        => Assert.Contains("pending command", StateRoundTrip.Refused(_fresh, StateRoundTrip.WithByte(StateRoundTrip.Save(_controller), 2, 0xaa)), StringComparison.Ordinal);

    [Fact]
    public void A_queue_longer_than_the_controllers_is_refused()
        => Assert.Contains("queue count", StateRoundTrip.Refused(_fresh, StateRoundTrip.WithByte(StateRoundTrip.Save(_controller), 6, 17)), StringComparison.Ordinal);

    [Fact]
    public void A_truncated_queue_is_refused()
    {
        _controller.DataPort.Write(0, [0xff]); // fa aa
        Assert.Contains("queue byte 1", StateRoundTrip.Refused(_fresh, StateRoundTrip.Truncated(StateRoundTrip.Save(_controller), 2)), StringComparison.Ordinal);
    }
}
