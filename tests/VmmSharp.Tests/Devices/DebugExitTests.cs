using VmmSharp.Devices.Legacy;
using Xunit;

namespace VmmSharp.Tests.Devices;

public class DebugExitTests
{
    [Fact]
    public void Byte_write_exits_with_the_value_shifted_left_plus_one()
    {
        int? status = null;
        var device = new DebugExit(s => status = s);

        device.Write(0, [0x10]);

        Assert.Equal(0x21, status);
    }

    [Fact]
    public void Dword_write_uses_all_four_bytes_little_endian()
    {
        int? status = null;
        var device = new DebugExit(s => status = s);

        device.Write(0, [0x01, 0x01, 0x00, 0x00]);

        Assert.Equal((0x0101 << 1) | 1, status);
    }

    [Fact]
    public void Byte_write_ignores_bytes_beyond_its_width()
    {
        int? status = null;
        var device = new DebugExit(s => status = s);

        device.Write(0, [0x00]);

        Assert.Equal(1, status);
    }

    [Fact]
    public void Status_wraps_like_C_exit_for_large_values()
    {
        Assert.Equal(-1, DebugExit.StatusFor(0xffff_ffff));
    }

    [Fact]
    public void Reads_return_zero_as_in_QEMU()
    {
        var device = new DebugExit(_ => { });
        byte[] data = [0xaa, 0xaa, 0xaa, 0xaa];

        device.Read(0, data);

        Assert.Equal(new byte[4], data);
    }
}
