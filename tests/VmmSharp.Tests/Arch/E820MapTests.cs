using VmmSharp.Arch.X86;
using VmmSharp.Memory;
using Xunit;

namespace VmmSharp.Tests.Arch;

public class E820MapTests
{
    [Fact]
    public void LowRamIsSplitAroundTheLegacyArea()
    {
        E820Map map = E820Map.FromRegions(Layout.RamRegions(64UL << 20));
        Assert.Equal(
            [
                new E820Entry(0, 0x9fc00, E820Type.Ram),
                new E820Entry(0x9fc00, 0x100000 - 0x9fc00, E820Type.Reserved),
                new E820Entry(0x100000, (64UL << 20) - 0x100000, E820Type.Ram),
            ],
            map.Entries);
        Assert.Equal(64UL << 20, map.LowRamEnd);
    }

    [Fact]
    public void RamAboveTheHoleIsItsOwnEntry()
    {
        E820Map map = E820Map.FromRegions(Layout.RamRegions(5UL << 30));
        Assert.Equal(4, map.Entries.Count);
        Assert.Equal(new E820Entry(0x100000, (3UL << 30) - 0x100000, E820Type.Ram), map.Entries[2]);
        Assert.Equal(new E820Entry(4UL << 30, 2UL << 30, E820Type.Ram), map.Entries[3]);
        Assert.Equal(3UL << 30, map.LowRamEnd);
    }

    [Fact]
    public void TheMpTableLiesInReservedSpace()
    {
        E820Map map = E820Map.FromRegions(Layout.RamRegions(64UL << 20));
        ulong end = Layout.MpTable + (ulong)MpTable.Size(MpTable.MaxCpus);
        Assert.Contains(map.Entries, e => e.Type == E820Type.Reserved && e.Address <= Layout.MpTable && end <= e.End);
    }

    [Fact]
    public void ReadOnlyRegionsAreNotRam()
    {
        using var memory = new GuestMemory(new GuestRegionSpec(0, 16UL << 20), new GuestRegionSpec(0xFFFF_0000, 0x10000, ReadOnly: true));
        Assert.DoesNotContain(E820Map.FromMemory(memory).Entries, e => e.Address >= 0xFFFF_0000);
    }
}
