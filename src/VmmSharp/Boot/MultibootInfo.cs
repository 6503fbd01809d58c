using System.Runtime.InteropServices;

namespace VmmSharp.Boot;

/// <summary>The Multiboot information structure (MBI, section 3.3), up to the fields this loader fills.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct MultibootInfo
{
    /// <summary>mem_lower and mem_upper are valid.</summary>
    public const uint FlagMemory = 1 << 0;

    /// <summary>cmdline is valid.</summary>
    public const uint FlagCommandLine = 1 << 2;

    /// <summary>mods_count and mods_addr are valid.</summary>
    public const uint FlagModules = 1 << 3;

    /// <summary>mmap_length and mmap_addr are valid.</summary>
    public const uint FlagMemoryMap = 1 << 6;

    /// <summary>boot_loader_name is valid.</summary>
    public const uint FlagBootLoaderName = 1 << 9;

    /// <summary>flags: which fields are valid.</summary>
    public uint Flags;

    /// <summary>mem_lower: KiB of RAM from 0 (at most 640).</summary>
    public uint MemLower;

    /// <summary>mem_upper: KiB of RAM from 1 MiB to the first hole.</summary>
    public uint MemUpper;

    /// <summary>boot_device.</summary>
    public uint BootDevice;

    /// <summary>cmdline: address of the NUL-terminated command line.</summary>
    public uint CommandLine;

    /// <summary>mods_count.</summary>
    public uint ModulesCount;

    /// <summary>mods_addr: address of the first <see cref="MultibootModule"/>.</summary>
    public uint ModulesAddress;

    /// <summary>syms (a.out or ELF section table), 16 bytes, unused.</summary>
    public uint Syms0;

    /// <summary>syms, continued.</summary>
    public uint Syms1;

    /// <summary>syms, continued.</summary>
    public uint Syms2;

    /// <summary>syms, continued.</summary>
    public uint Syms3;

    /// <summary>mmap_length: total bytes of the memory map.</summary>
    public uint MemoryMapLength;

    /// <summary>mmap_addr: address of the first <see cref="MultibootMemoryMapEntry"/>.</summary>
    public uint MemoryMapAddress;

    /// <summary>drives_length.</summary>
    public uint DrivesLength;

    /// <summary>drives_addr.</summary>
    public uint DrivesAddress;

    /// <summary>config_table.</summary>
    public uint ConfigTable;

    /// <summary>boot_loader_name: address of a NUL-terminated name.</summary>
    public uint BootLoaderName;

    /// <summary>apm_table.</summary>
    public uint ApmTable;
}

/// <summary>A Multiboot module entry (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct MultibootModule
{
    /// <summary>mod_start: the module's first byte.</summary>
    public uint Start;

    /// <summary>mod_end: the first byte after the module.</summary>
    public uint End;

    /// <summary>string: address of the module's NUL-terminated command line.</summary>
    public uint CommandLine;

    /// <summary>reserved, zero.</summary>
    public uint Reserved;
}

/// <summary>A Multiboot memory map entry (24 bytes); <see cref="Size"/> counts the bytes after itself.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct MultibootMemoryMapEntry
{
    /// <summary>The value of <see cref="Size"/>: the entry's bytes after the size field.</summary>
    public const uint EntrySize = 20;

    /// <summary>size.</summary>
    public uint Size;

    /// <summary>base_addr.</summary>
    public ulong BaseAddress;

    /// <summary>length.</summary>
    public ulong Length;

    /// <summary>type: 1 available RAM, anything else reserved.</summary>
    public uint Type;
}
