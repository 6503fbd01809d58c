using System.Runtime.InteropServices;

namespace VmmSharp.Boot;

// Xen's include/public/arch-x86/hvm/start_info.h: what a PVH kernel finds through EBX.

/// <summary>struct hvm_start_info (56 bytes, version 1).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct HvmStartInfo
{
    public const uint MagicValue = 0x336ec578;
    public const uint Version1 = 1;

    public uint Magic;
    public uint Version;
    public uint Flags;
    public uint ModuleCount;
    public ulong ModuleListAddress;
    public ulong CommandLineAddress;
    public ulong RsdpAddress;
    public ulong MemoryMapAddress;
    public uint MemoryMapEntries;
    public uint Reserved;
}

/// <summary>struct hvm_modlist_entry (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct HvmModuleListEntry
{
    public ulong Address;
    public ulong Size;
    public ulong CommandLineAddress;
    public ulong Reserved;
}

/// <summary>struct hvm_memmap_table_entry (24 bytes); the type uses the E820 values.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct HvmMemoryMapEntry
{
    public ulong Address;
    public ulong Size;
    public uint Type;
    public uint Reserved;
}
