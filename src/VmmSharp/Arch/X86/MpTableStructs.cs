using System.Runtime.InteropServices;

namespace VmmSharp.Arch.X86;

// Intel MultiProcessor Specification 1.4, chapter 4: the structures as they lie in memory.

/// <summary>The MP floating pointer structure (16 bytes), which the OS finds by scanning for "_MP_".</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct MpFloatingPointer
{
    public const uint SignatureValue = 0x5f504d5f; // "_MP_"

    public uint Signature;
    public uint ConfigTableAddress;
    public byte LengthIn16ByteUnits;
    public byte SpecRevision;
    public byte Checksum;
    public byte Feature1; // 0: a configuration table is present (no default configuration)
    public byte Feature2; // bit 7 IMCRP clear: virtual wire mode, no IMCR
    public byte Feature3;
    public byte Feature4;
    public byte Feature5;
}

/// <summary>The MP configuration table header (44 bytes); the entries follow it.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct MpConfigHeader
{
    public const uint SignatureValue = 0x504d4350; // "PCMP"

    public uint Signature;
    public ushort BaseTableLength;
    public byte SpecRevision;
    public byte Checksum;
    public fixed byte OemId[8];
    public fixed byte ProductId[12];
    public uint OemTablePointer;
    public ushort OemTableSize;
    public ushort EntryCount;
    public uint LocalApicAddress;
    public ushort ExtendedTableLength;
    public byte ExtendedTableChecksum;
    public byte Reserved;
}

/// <summary>Entry type 0: a processor (20 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct MpProcessorEntry
{
    public const byte EntryType = 0;
    public const byte FlagEnabled = 1;
    public const byte FlagBootstrap = 2;

    public byte Type;
    public byte LocalApicId;
    public byte LocalApicVersion;
    public byte CpuFlags;
    public uint CpuSignature;
    public uint FeatureFlags;
    public ulong Reserved;
}

/// <summary>Entry type 1: a bus (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct MpBusEntry
{
    public const byte EntryType = 1;

    public byte Type;
    public byte BusId;
    public fixed byte BusType[6];
}

/// <summary>Entry type 2: an I/O APIC (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct MpIoApicEntry
{
    public const byte EntryType = 2;
    public const byte FlagEnabled = 1;

    public byte Type;
    public byte IoApicId;
    public byte IoApicVersion;
    public byte Flags;
    public uint Address;
}

/// <summary>Entry types 3 (I/O interrupt assignment) and 4 (local interrupt assignment), 8 bytes each.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct MpInterruptEntry
{
    public const byte IoInterruptType = 3;
    public const byte LocalInterruptType = 4;
    public const byte Int = 0;
    public const byte Nmi = 1;
    public const byte ExtInt = 3;
    public const byte AllLocalApics = 0xff;

    public byte Type;
    public byte InterruptType;
    public ushort Flags; // 0: polarity and trigger conform to the bus (ISA: edge, active high)
    public byte SourceBusId;
    public byte SourceBusIrq;
    public byte DestinationApicId;
    public byte DestinationPin;
}
