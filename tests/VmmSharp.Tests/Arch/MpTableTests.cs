using System.Buffers.Binary;
using VmmSharp.Arch.X86;
using VmmSharp.Memory;
using Xunit;

namespace VmmSharp.Tests.Arch;

public class MpTableTests
{
    private static byte Sum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (byte b in bytes)
        {
            sum += b;
        }
        return sum;
    }

    private static (byte[] Pointer, byte[] Config) ReadTable(GuestMemory memory, ulong at)
    {
        byte[] pointer = new byte[16];
        memory.Read(at, pointer);
        uint configAt = BinaryPrimitives.ReadUInt32LittleEndian(pointer.AsSpan(4));
        byte[] header = new byte[44];
        memory.Read(configAt, header);
        byte[] config = new byte[BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(4))];
        memory.Read(configAt, config);
        return (pointer, config);
    }

    private static List<byte[]> Entries(byte[] config)
    {
        var entries = new List<byte[]>();
        int at = 44;
        while (at < config.Length)
        {
            int size = config[at] == 0 ? 20 : 8;
            entries.Add(config[at..(at + size)]);
            at += size;
        }
        return entries;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(MpTable.MaxCpus)]
    public void ChecksumsAndSignaturesAreValid(int cpus)
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        ulong at = MpTable.Write(memory, cpus);
        Assert.Equal(Layout.MpTable, at);
        (byte[] pointer, byte[] config) = ReadTable(memory, at);
        Assert.Equal("_MP_"u8.ToArray(), pointer[..4]);
        Assert.Equal(1, pointer[8]);
        Assert.Equal(4, pointer[9]);
        Assert.Equal(0, Sum(pointer));
        Assert.Equal("PCMP"u8.ToArray(), config[..4]);
        Assert.Equal(0, Sum(config));
        Assert.Equal(Entries(config).Count, BinaryPrimitives.ReadUInt16LittleEndian(config.AsSpan(34)));
        Assert.Equal(0xFEE00000U, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(36)));
        Assert.True(BinaryPrimitives.ReadUInt32LittleEndian(pointer.AsSpan(4)) + (ulong)config.Length <= Layout.MpTableLimit);
    }

    [Fact]
    public void ProcessorsHaveApicIdsInOrderAndCpuZeroIsTheBsp()
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        (_, byte[] config) = ReadTable(memory, MpTable.Write(memory, 4));
        byte[][] cpus = [.. Entries(config).Where(e => e[0] == 0)];
        Assert.Equal(4, cpus.Length);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(i, cpus[i][1]);
            Assert.Equal(i == 0 ? 3 : 1, cpus[i][3]);
        }
    }

    [Fact]
    public void DescribesTheIsaBusAndTheIoApic()
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        (_, byte[] config) = ReadTable(memory, MpTable.Write(memory, 2));
        List<byte[]> entries = Entries(config);
        byte[] bus = Assert.Single(entries, e => e[0] == 1);
        Assert.Equal("ISA   "u8.ToArray(), bus[2..8]);
        byte[] ioApic = Assert.Single(entries, e => e[0] == 2);
        Assert.Equal(2, ioApic[1]);
        Assert.Equal(1, ioApic[3]);
        Assert.Equal(0xFEC00000U, BinaryPrimitives.ReadUInt32LittleEndian(ioApic.AsSpan(4)));
    }

    [Fact]
    public void IsaIrqsGoToTheIoApicWithIrq0OnPin2()
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        (_, byte[] config) = ReadTable(memory, MpTable.Write(memory, 2));
        Dictionary<byte, byte> pinOfIrq = Entries(config).Where(e => e[0] == 3).ToDictionary(e => e[5], e => e[7]);
        Assert.Equal(2, pinOfIrq[0]);
        Assert.False(pinOfIrq.ContainsKey(2));
        for (byte irq = 1; irq < 16; irq++)
        {
            if (irq != 2)
            {
                Assert.Equal(irq, pinOfIrq[irq]);
            }
        }
        Assert.All(Entries(config).Where(e => e[0] == 3), e => Assert.Equal(2, e[6]));
    }

    [Fact]
    public void LocalInterruptsWireExtIntToLint0AndNmiToLint1()
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        (_, byte[] config) = ReadTable(memory, MpTable.Write(memory, 1));
        byte[][] local = [.. Entries(config).Where(e => e[0] == 4)];
        Assert.Equal(2, local.Length);
        Assert.Equal([4, 3, 0, 0, 0, 0, 0, 0], local[0]);
        Assert.Equal([4, 1, 0, 0, 0, 0, 0xff, 1], local[1]);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(255)]
    public void CpuCountsOutOfRangeAreRefused(int cpus)
    {
        using var memory = GuestMemory.WithRam(4UL << 20);
        ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => MpTable.Write(memory, cpus));
        Assert.Contains(cpus.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, StringComparison.Ordinal);
    }
}
