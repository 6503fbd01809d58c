using System.Buffers.Binary;
using System.Text;
using VmmSharp.Arch.X86;
using VmmSharp.Arch.X86.Acpi;
using VmmSharp.Memory;

namespace VmmSharp.Tests.Arch;

public class AcpiTablesTests
{
    private static (GuestMemory Memory, ulong Rsdp) Written(int cpus)
    {
        var memory = GuestMemory.WithRam(2 << 20);
        return (memory, AcpiTables.Write(memory, cpus));
    }

    private static byte[] Table(GuestMemory m, ulong address)
    {
        uint length = m.Read<uint>(address + 4);
        byte[] t = new byte[length];
        m.Read(address, t);
        return t;
    }

    private static byte Sum(ReadOnlySpan<byte> bytes)
    {
        byte s = 0;
        foreach (byte b in bytes)
        {
            s += b;
        }
        return s;
    }

    [Fact]
    public void TheRsdpSitsWhereAnOsScansAndBothChecksumsHold()
    {
        (GuestMemory m, ulong rsdp) = Written(1);
        using (m)
        {
            Assert.Equal(Layout.AcpiTables, rsdp);
            Assert.InRange(rsdp, 0xE0000UL, 0xFFFFFUL);
            Assert.Equal(0UL, rsdp % 16);
            byte[] r = new byte[36];
            m.Read(rsdp, r);
            Assert.Equal("RSD PTR ", Encoding.ASCII.GetString(r, 0, 8));
            Assert.Equal(2, r[15]);
            Assert.Equal(0, Sum(r.AsSpan(0, 20)));
            Assert.Equal(0, Sum(r));
        }
    }

    [Fact]
    public void EveryTableHasItsSignatureAndAValidChecksum()
    {
        (GuestMemory m, ulong rsdp) = Written(2);
        using (m)
        {
            byte[] xsdt = Table(m, m.Read<ulong>(rsdp + 24));
            Assert.Equal("XSDT", Encoding.ASCII.GetString(xsdt, 0, 4));
            Assert.Equal(0, Sum(xsdt));
            ulong fadtAddress = BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(36));
            ulong madtAddress = BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(44));
            byte[] fadt = Table(m, fadtAddress);
            byte[] madt = Table(m, madtAddress);
            byte[] dsdt = Table(m, BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(140)));
            Assert.Equal(("FACP", "APIC", "DSDT"), (Encoding.ASCII.GetString(fadt, 0, 4), Encoding.ASCII.GetString(madt, 0, 4), Encoding.ASCII.GetString(dsdt, 0, 4)));
            Assert.Equal((0, 0, 0), (Sum(fadt), Sum(madt), Sum(dsdt)));
            Assert.Equal(276, fadt.Length);
            Assert.True(fadtAddress + (ulong)fadt.Length <= Layout.AcpiTablesLimit && madtAddress >= Layout.AcpiTables);
        }
    }

    [Fact]
    public void TheFadtIsHardwareReducedWithSleepAndResetRegisters()
    {
        (GuestMemory m, ulong rsdp) = Written(1);
        using (m)
        {
            byte[] xsdt = Table(m, m.Read<ulong>(rsdp + 24));
            byte[] fadt = Table(m, BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(36)));
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(112));
            Assert.NotEqual(0u, flags & (1u << 20)); // HW_REDUCED_ACPI
            Assert.NotEqual(0u, flags & (1u << 10)); // RESET_REG_SUP
            Assert.Equal(1, fadt[116]);              // reset register in I/O space
            Assert.Equal(0x64UL, BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(120)));
            Assert.Equal(0xfe, fadt[128]);
            Assert.Equal((ulong)Layout.AcpiSleepControlPort, BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(248)));
            Assert.Equal((ulong)Layout.AcpiSleepStatusPort, BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(260)));
            Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(fadt.AsSpan(109)) & 3); // legacy devices and an i8042
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(254)]
    public void TheMadtListsEachCpuTheIoapicAndIrq0sOverride(int cpus)
    {
        (GuestMemory m, ulong rsdp) = Written(cpus);
        using (m)
        {
            byte[] xsdt = Table(m, m.Read<ulong>(rsdp + 24));
            byte[] madt = Table(m, BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(44)));
            Assert.Equal(Layout.LocalApicAddress, BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(36)));
            var apicIds = new List<int>();
            (int Id, uint Address)? ioapic = null;
            (int Source, uint Gsi)? over = null;
            for (int at = 44; at < madt.Length; at += madt[at + 1])
            {
                switch (madt[at])
                {
                    case 0:
                        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(at + 4)));
                        apicIds.Add(madt[at + 3]);
                        break;
                    case 1: ioapic = (madt[at + 2], BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(at + 4))); break;
                    case 2: over = (madt[at + 3], BinaryPrimitives.ReadUInt32LittleEndian(madt.AsSpan(at + 4))); break;
                }
            }
            Assert.Equal(Enumerable.Range(0, cpus), apicIds);
            Assert.Equal((cpus, Layout.IoApicAddress), ioapic);
            Assert.Equal((0, (uint)Layout.Irq0IoApicPin), over);
        }
    }

    [Fact]
    public void TheDsdtNamesTheSoftOffSleepType()
    {
        (GuestMemory m, ulong rsdp) = Written(1);
        using (m)
        {
            byte[] xsdt = Table(m, m.Read<ulong>(rsdp + 24));
            byte[] fadt = Table(m, BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(36)));
            byte[] dsdt = Table(m, BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(140)));
            byte[] aml = dsdt[36..];
            Assert.Equal(new byte[] { 0x08, (byte)'_', (byte)'S', (byte)'5', (byte)'_', 0x12, 0x07, 0x04, 0x0a, 5, 0, 0, 0 }, aml);
        }
    }

    [Fact]
    public void TheDsdtDescribesEachVirtioMmioDeviceAsLnro0005WithItsWindowAndEdgeInterrupt()
    {
        using var m = GuestMemory.WithRam(2 << 20);
        ulong rsdp = AcpiTables.Write(m, 1, [Layout.VirtioMmioSlot(0), Layout.VirtioMmioSlot(1)]);
        byte[] xsdt = Table(m, m.Read<ulong>(rsdp + 24));
        byte[] fadt = Table(m, BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(36)));
        byte[] dsdt = Table(m, BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(140)));
        Assert.Equal(0, Sum(dsdt));
        byte[] aml = dsdt[(36 + 13)..]; // after _S5

        // Device (V001) { Name (_HID, "LNRO0005") Name (_UID, 1) Name (_CCA, 1)
        //   Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, 0xD0001000, 0x1000) Interrupt (Consumer, Edge, ActiveHigh, Exclusive) { 6 } }) }
        byte[] device1 =
        [
            0x5b, 0x82, 0x41, 0x04, (byte)'V', (byte)'0', (byte)'0', (byte)'1',
            0x08, (byte)'_', (byte)'H', (byte)'I', (byte)'D', 0x0d, .. "LNRO0005"u8, 0x00,
            0x08, (byte)'_', (byte)'U', (byte)'I', (byte)'D', 0x01,
            0x08, (byte)'_', (byte)'C', (byte)'C', (byte)'A', 0x01,
            0x08, (byte)'_', (byte)'C', (byte)'R', (byte)'S', 0x11, 0x1a, 0x0a, 0x17,
            0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00,
            0x89, 0x06, 0x00, 0x03, 0x01, 0x06, 0x00, 0x00, 0x00,
            0x79, 0x00,
        ];
        Assert.Equal(0x10, aml[0]);                                  // Scope
        Assert.Equal(aml.Length - 1, (aml[1] & 0xf) | (aml[2] << 4)); // its two-byte PkgLength covers the rest
        Assert.Equal("\\_SB_"u8.ToArray(), aml[3..8]);
        Assert.Equal(device1, aml[^device1.Length..]);
        Assert.Equal(device1.Length - 2, (device1[2] & 0xf) | (device1[3] << 4)); // PkgLength counts itself and what follows
        Assert.Contains("V000", Encoding.ASCII.GetString(aml), StringComparison.Ordinal);
    }
}
