using VmmSharp.Buses;
using Xunit;

namespace VmmSharp.Tests.Buses;

public class MmioBusTests
{
    private sealed class OffsetEcho : IMmioDevice
    {
        public ulong LastWriteOffset { get; private set; } = ulong.MaxValue;

        public void Read(ulong offset, Span<byte> data) => BitConverter.TryWriteBytes(data, (uint)offset);

        public void Write(ulong offset, ReadOnlySpan<byte> data) => LastWriteOffset = offset;
    }

    [Fact]
    public void Read_dispatches_with_the_offset_from_the_base_address()
    {
        var bus = new MmioBus();
        bus.Register(0xd000_0000, 0x1000, new OffsetEcho());

        Span<byte> data = stackalloc byte[4];
        Assert.True(bus.Read(0xd000_0070, data));

        Assert.Equal(0x70u, BitConverter.ToUInt32(data));
    }

    [Fact]
    public void Write_dispatches_with_the_offset_from_the_base_address()
    {
        var bus = new MmioBus();
        var device = new OffsetEcho();
        bus.Register(0xd000_0000, 0x1000, device);

        Assert.True(bus.Write(0xd000_0ffc, [1, 2, 3, 4]));

        Assert.Equal(0xffcUL, device.LastWriteOffset);
    }

    [Fact]
    public void Read_of_an_unhandled_address_returns_all_ones_and_false()
    {
        var bus = new MmioBus();
        bus.Register(0xd000_0000, 0x1000, new OffsetEcho());

        byte[] data = new byte[8];
        Assert.False(bus.Read(0xd000_1000, data));

        Assert.All(data, b => Assert.Equal(0xff, b));
    }

    [Fact]
    public void Write_to_an_unhandled_address_returns_false()
    {
        var bus = new MmioBus();
        Assert.False(bus.Write(0xfee0_0000, [0]));
    }

    [Fact]
    public void Overlapping_registration_is_rejected_naming_both_ranges()
    {
        var bus = new MmioBus();
        bus.Register(0xd000_0000, 0x1000, new OffsetEcho());

        ArgumentException error = Assert.Throws<ArgumentException>(() => bus.Register(0xcfff_f000, 0x2000, new OffsetEcho()));

        Assert.Contains("0xcffff000-0xd0000fff", error.Message, StringComparison.Ordinal);
        Assert.Contains("0xd0000000-0xd0000fff", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Range_at_the_top_of_the_address_space_is_handled()
    {
        var bus = new MmioBus();
        bus.Register(ulong.MaxValue - 0xfff, 0x1000, new OffsetEcho());

        Span<byte> data = stackalloc byte[4];
        Assert.True(bus.Read(ulong.MaxValue, data));
        Assert.Equal(0xfffu, BitConverter.ToUInt32(data));
    }

    [Fact]
    public void Range_wrapping_past_the_top_of_the_address_space_is_rejected()
    {
        var bus = new MmioBus();
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(ulong.MaxValue - 0xfff, 0x1001, new OffsetEcho()));
    }
}
