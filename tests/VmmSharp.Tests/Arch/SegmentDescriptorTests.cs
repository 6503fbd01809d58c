using VmmSharp.Arch.X86;
using Xunit;

namespace VmmSharp.Tests.Arch;

public class SegmentDescriptorTests
{
    [Theory]
    [InlineData(0, 0x00cf9b000000ffffUL)] // flat 32-bit code
    [InlineData(1, 0x00af9b000000ffffUL)] // 64-bit code
    [InlineData(2, 0x00cf93000000ffffUL)] // flat data
    [InlineData(3, 0x00008b0000000067UL)] // busy TSS at 0
    public void EncodesTheClassicGdtEntries(int kind, ulong expected)
    {
        SegmentDescriptor d = kind switch
        {
            0 => SegmentDescriptor.FlatCode32(0x10),
            1 => SegmentDescriptor.Code64(0x10),
            2 => SegmentDescriptor.FlatData(0x18),
            _ => SegmentDescriptor.BusyTss(0x20, 0),
        };
        Assert.Equal(expected, d.ToGdtEntry());
    }

    [Fact]
    public void DecodingAnEncodedEntryGivesTheSameDescriptor()
    {
        var d = new SegmentDescriptor(0x28, 0x12345678, 0xabcde, 0x3, true, 3, true, true, false, false);
        Assert.Equal(d, SegmentDescriptor.FromGdtEntry(0x28, d.ToGdtEntry()));
    }

    [Fact]
    public void AnUnencodableLimitIsRefused()
    {
        var d = new SegmentDescriptor(0x8, 0, 0x1_00000, 0x3, true, 0, true, true, false, false);
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => d.ToGdtEntry());
        Assert.Contains("0x100000", e.Message, StringComparison.Ordinal);
    }
}
