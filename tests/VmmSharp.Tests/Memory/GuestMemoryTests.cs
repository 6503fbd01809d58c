using VmmSharp.Memory;

namespace VmmSharp.Tests.Memory;

public class GuestMemoryTests
{
    private static GuestMemory WithHole() => new(
        new GuestRegionSpec(0, 0x10000),
        new GuestRegionSpec(0x20000, 0x10000),
        new GuestRegionSpec(0x30000, 0x1000, ReadOnly: true));

    [Fact]
    public void TypedWriteThenReadRoundTrips()
    {
        using GuestMemory m = WithHole();
        m.Write(0x100, 0x1122334455667788UL);
        Assert.Equal(0x1122334455667788UL, m.Read<ulong>(0x100));
        Assert.Equal((byte)0x88, m.Read<byte>(0x100));
        Assert.Equal((ushort)0x5566, m.Read<ushort>(0x102));
    }

    [Fact]
    public void ReadInAHoleThrowsWithTheAddress()
    {
        using GuestMemory m = WithHole();
        var e = Assert.Throws<GuestMemoryException>(() => m.Read<uint>(0x18000));
        Assert.Equal(0x18000UL, e.Address);
        Assert.Contains("0x18000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AccessStraddlingTheEndOfARegionIntoAHoleFailsAndChangesNothing()
    {
        using GuestMemory m = WithHole();
        byte[] data = [1, 2, 3, 4, 5, 6, 7, 8];
        Assert.Throws<GuestMemoryException>(() => m.Write(0xfffc, data));
        Assert.Equal(0u, m.Read<uint>(0xfffc));
        Assert.False(m.TryWrite(0xfffc, data));
    }

    [Fact]
    public void AccessAcrossAdjacentRegionsIsAllowed()
    {
        using var m = new GuestMemory(new GuestRegionSpec(0, 0x1000), new GuestRegionSpec(0x1000, 0x1000));
        m.Write(0xffc, 0xaabbccdd_11223344UL);
        Assert.Equal(0xaabbccdd_11223344UL, m.Read<ulong>(0xffc));
        Assert.Equal(0xaabbccddu, m.Regions[1].HostSpan(0, 4).ToArray() is var b ? BitConverter.ToUInt32(b) : 0);
    }

    [Fact]
    public void AddressNearTheTopOfTheAddressSpaceDoesNotWrap()
    {
        using GuestMemory m = WithHole();
        Assert.Throws<GuestMemoryException>(() => m.Read<ulong>(ulong.MaxValue - 3));
        Assert.False(m.Contains(ulong.MaxValue - 3, 8));
    }

    [Fact]
    public void WriteToReadOnlyRegionIsRefusedButTheHostCanFillIt()
    {
        using GuestMemory m = WithHole();
        var e = Assert.Throws<GuestMemoryException>(() => m.Write(0x30000, (byte)1));
        Assert.Contains("read-only", e.Message, StringComparison.Ordinal);
        m.Regions[2].HostSpan(0, 4).Fill(0x5a);
        Assert.Equal(0x5a5a5a5au, m.Read<uint>(0x30000));
    }

    [Fact]
    public void OverlappingRegionsAreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new GuestMemory(new GuestRegionSpec(0, 0x2000), new GuestRegionSpec(0x1000, 0x1000)));
        Assert.Contains("overlaps", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x1000UL, 0UL)]
    [InlineData(0x1001UL, 0x1000UL)]
    [InlineData(0x1000UL, 0x1234UL)]
    public void UnalignedOrEmptyRegionsAreRejected(ulong address, ulong size)
    {
        Assert.Throws<ArgumentException>(() => new GuestMemory(new GuestRegionSpec(address, size)));
    }

    [Fact]
    public void GetSpanRefusesARangeThatCrossesARegionEnd()
    {
        using GuestMemory m = WithHole();
        Assert.Equal(16, m.GetSpan(0xfff0, 16).Length);
        Assert.Throws<GuestMemoryException>(() => m.GetSpan(0xfff0, 17));
    }

    [Fact]
    public void NewMemoryIsZeroAndTotalSizeAddsUpRegions()
    {
        using GuestMemory m = WithHole();
        Assert.Equal(0x21000UL, m.TotalSize);
        Assert.Equal(0UL, m.Read<ulong>(0x2ff00));
    }

    [Fact]
    public void DisposedMemoryRefusesAccess()
    {
        GuestMemory m = WithHole();
        m.Dispose();
        Assert.Throws<ObjectDisposedException>(() => m.Read<byte>(0));
    }

    [Fact]
    public void ReadCStringStopsAtNul()
    {
        using GuestMemory m = WithHole();
        m.Write(0x200, "hello\0world"u8);
        Assert.Equal("hello", m.ReadCString(0x200));
    }

    [Fact]
    public void FillThatRunsIntoAHoleWritesNothing()
    {
        using GuestMemory m = WithHole();
        m.Fill(0xf000, 0x1000, 0x11);
        Assert.Throws<GuestMemoryException>(() => m.Fill(0xf800, 0x1000, 0x22)); // [0xf800, 0x10800) ends in the hole
        Assert.Equal(0x11, m.Read<byte>(0xf800));
        Assert.Equal(0x11, m.Read<byte>(0xffff));
    }
}
