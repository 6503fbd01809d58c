using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VmmSharp.Memory;

namespace VmmSharp.Arch.X86;

/// <summary>
/// Writes an Intel MP 1.4 table: Linux finds the application processors and the IOAPIC through it when there is no ACPI.
/// The floating pointer sits at <see cref="Layout.MpTable"/> (the last KiB of base memory, which Linux scans) and the
/// configuration table follows it, inside the reserved legacy area.
/// </summary>
public static class MpTable
{
    /// <summary>The most CPUs: APIC ids 0..N−1 and the IOAPIC's id N must stay below the broadcast id 0xff.</summary>
    public const int MaxCpus = 254;

    /// <summary>The ISA bus's id in the table.</summary>
    public const byte IsaBusId = 0;

    /// <summary>The number of ISA IRQs described.</summary>
    public const int IsaIrqCount = 16;

    // What KVM's in-kernel LAPIC and IOAPIC report as their version registers.
    private const byte LocalApicVersion = 0x14;
    private const byte IoApicVersion = 0x11;

    // Family 6, and the FPU and APIC feature bits: enough for an OS that reads these fields.
    private const uint CpuSignature = 0x600;
    private const uint CpuFeatures = (1 << 0) | (1 << 9);

    private const byte SpecRevision = 4;

    /// <summary>The bytes the floating pointer and configuration table take for <paramref name="cpuCount"/> CPUs.</summary>
    public static int Size(int cpuCount) =>
        Unsafe.SizeOf<MpFloatingPointer>() + Unsafe.SizeOf<MpConfigHeader>()
        + (cpuCount * Unsafe.SizeOf<MpProcessorEntry>()) + Unsafe.SizeOf<MpBusEntry>() + Unsafe.SizeOf<MpIoApicEntry>()
        + ((IoInterruptCount + 2) * Unsafe.SizeOf<MpInterruptEntry>());

    // ISA IRQ 2 is the PIC cascade and its IOAPIC pin carries IRQ 0, so it gets no entry.
    private const int IoInterruptCount = IsaIrqCount - 1;

    /// <summary>
    /// Writes the table for <paramref name="cpuCount"/> CPUs (APIC ids 0..N−1, CPU 0 the bootstrap processor,
    /// the IOAPIC with id N) and returns the floating pointer's address.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpuCount"/> is not in 1..<see cref="MaxCpus"/>.</exception>
    public static ulong Write(GuestMemory memory, int cpuCount)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentOutOfRangeException.ThrowIfLessThan(cpuCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(cpuCount, MaxCpus);
        byte[] table = Build(cpuCount);
        if (Layout.MpTable + (ulong)table.Length > Layout.MpTableLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(cpuCount), cpuCount,
                $"an MP table for {cpuCount} CPUs takes 0x{table.Length:x} bytes and would pass 0x{Layout.MpTableLimit:x}");
        }
        memory.Write(Layout.MpTable, table);
        return Layout.MpTable;
    }

    private static byte[] Build(int cpuCount)
    {
        byte[] table = new byte[Size(cpuCount)];
        int fpSize = Unsafe.SizeOf<MpFloatingPointer>();
        int offset = fpSize + Unsafe.SizeOf<MpConfigHeader>();
        byte ioApicId = (byte)cpuCount;

        for (int cpu = 0; cpu < cpuCount; cpu++)
        {
            Put(table, ref offset, new MpProcessorEntry
            {
                Type = MpProcessorEntry.EntryType,
                LocalApicId = (byte)cpu,
                LocalApicVersion = LocalApicVersion,
                CpuFlags = (byte)(MpProcessorEntry.FlagEnabled | (cpu == 0 ? MpProcessorEntry.FlagBootstrap : 0)),
                CpuSignature = CpuSignature,
                FeatureFlags = CpuFeatures,
            });
        }

        var bus = new MpBusEntry { Type = MpBusEntry.EntryType, BusId = IsaBusId };
        unsafe
        {
            "ISA   "u8.CopyTo(new Span<byte>(bus.BusType, 6));
        }
        Put(table, ref offset, bus);

        Put(table, ref offset, new MpIoApicEntry
        {
            Type = MpIoApicEntry.EntryType,
            IoApicId = ioApicId,
            IoApicVersion = IoApicVersion,
            Flags = MpIoApicEntry.FlagEnabled,
            Address = Layout.IoApicAddress,
        });

        for (byte irq = 0; irq < IsaIrqCount; irq++)
        {
            if (irq == 2)
            {
                continue;
            }
            Put(table, ref offset, new MpInterruptEntry
            {
                Type = MpInterruptEntry.IoInterruptType,
                InterruptType = MpInterruptEntry.Int,
                SourceBusId = IsaBusId,
                SourceBusIrq = irq,
                DestinationApicId = ioApicId,
                DestinationPin = irq == 0 ? Layout.Irq0IoApicPin : irq,
            });
        }

        // Virtual wire mode: the 8259 reaches the BSP through LINT0, NMIs reach every CPU through LINT1.
        Put(table, ref offset, new MpInterruptEntry
        {
            Type = MpInterruptEntry.LocalInterruptType,
            InterruptType = MpInterruptEntry.ExtInt,
            SourceBusId = IsaBusId,
            DestinationApicId = 0,
            DestinationPin = 0,
        });
        Put(table, ref offset, new MpInterruptEntry
        {
            Type = MpInterruptEntry.LocalInterruptType,
            InterruptType = MpInterruptEntry.Nmi,
            SourceBusId = IsaBusId,
            DestinationApicId = MpInterruptEntry.AllLocalApics,
            DestinationPin = 1,
        });

        var header = new MpConfigHeader
        {
            Signature = MpConfigHeader.SignatureValue,
            BaseTableLength = (ushort)(table.Length - fpSize),
            SpecRevision = SpecRevision,
            EntryCount = (ushort)(cpuCount + 1 + 1 + IoInterruptCount + 2),
            LocalApicAddress = Layout.LocalApicAddress,
        };
        unsafe
        {
            "VMMSHARP"u8.CopyTo(new Span<byte>(header.OemId, 8));
            "VMMSHARP MP"u8.CopyTo(new Span<byte>(header.ProductId, 12));
        }
        int headerOffset = fpSize;
        Put(table, ref headerOffset, header);
        header.Checksum = Checksum(table.AsSpan(fpSize));
        headerOffset = fpSize;
        Put(table, ref headerOffset, header);

        var pointer = new MpFloatingPointer
        {
            Signature = MpFloatingPointer.SignatureValue,
            ConfigTableAddress = (uint)Layout.MpTable + (uint)fpSize,
            LengthIn16ByteUnits = 1,
            SpecRevision = SpecRevision,
        };
        int start = 0;
        Put(table, ref start, pointer);
        pointer.Checksum = Checksum(table.AsSpan(0, fpSize));
        start = 0;
        Put(table, ref start, pointer);
        return table;
    }

    private static void Put<T>(byte[] table, ref int offset, T value)
        where T : unmanaged
    {
        MemoryMarshal.Write(table.AsSpan(offset), in value);
        offset += Unsafe.SizeOf<T>();
    }

    /// <summary>The byte that makes <paramref name="bytes"/> (whose checksum byte is still zero) sum to zero.</summary>
    internal static byte Checksum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (byte b in bytes)
        {
            sum += b;
        }
        return (byte)-sum;
    }
}
