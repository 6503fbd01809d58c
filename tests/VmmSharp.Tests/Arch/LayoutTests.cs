using VmmSharp.Arch.X86;
using VmmSharp.Memory;
using Xunit;

namespace VmmSharp.Tests.Arch;

public class LayoutTests
{
    [Fact]
    public void RamBelowTheHoleIsOneRegionFromZero()
    {
        GuestRegionSpec[] regions = Layout.RamRegions(256UL << 20);
        Assert.Equal([new GuestRegionSpec(0, 256UL << 20)], regions);
    }

    [Fact]
    public void ExactlyThreeGiBStaysBelowTheHole()
    {
        Assert.Equal([new GuestRegionSpec(0, 0xC000_0000)], Layout.RamRegions(0xC000_0000));
    }

    [Fact]
    public void RamBeyondThreeGiBContinuesAboveFourGiB()
    {
        GuestRegionSpec[] regions = Layout.RamRegions(5UL << 30);
        Assert.Equal([new GuestRegionSpec(0, 3UL << 30), new GuestRegionSpec(4UL << 30, 2UL << 30)], regions);
    }

    [Fact]
    public void TooLittleRamIsRefusedWithTheValueAndTheLimit()
    {
        ArgumentException e = Assert.Throws<ArgumentException>(() => Layout.RamRegions(0x100000));
        Assert.Contains("0x100000", e.Message, StringComparison.Ordinal);
        Assert.Contains("0x200000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RamNotAMultipleOfAPageIsRefusedWithTheValue()
    {
        ArgumentException e = Assert.Throws<ArgumentException>(() => Layout.RamRegions((4UL << 20) + 0x800));
        Assert.Contains("0x400800", e.Message, StringComparison.Ordinal);
        Assert.Contains("0x1000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BootTablesDoNotOverlap()
    {
        (ulong Start, ulong End)[] areas =
        [
            (Layout.Gdt, Layout.Gdt + 48),
            (Layout.Idt, Layout.Idt + 8),
            (Layout.PvhStartInfo, Layout.PvhMemoryMapEnd),
            (Layout.MultibootInfo, Layout.MultibootMemoryMapEnd),
            (Layout.BootStackPointer - 0x1000, Layout.BootStackPointer),
            (Layout.ZeroPage, Layout.ZeroPage + 0x1000),
            (Layout.Pml4, Layout.PageDirectories + ((ulong)Layout.PageDirectoryCount * 0x1000)),
            (Layout.CommandLine, Layout.CommandLine + Layout.CommandLineCapacity),
            (Layout.ModuleCommandLines, Layout.ModuleCommandLines + Layout.ModuleCommandLinesCapacity),
            (Layout.MpTable, Layout.MpTableLimit),
        ];
        for (int i = 0; i < areas.Length; i++)
        {
            Assert.True(areas[i].End <= Layout.EbdaStart || areas[i].Start >= Layout.EbdaStart, $"area {i} straddles the EBDA");
            for (int j = i + 1; j < areas.Length; j++)
            {
                Assert.False(areas[i].Start < areas[j].End && areas[j].Start < areas[i].End, $"areas {i} and {j} overlap");
            }
        }
    }
}
