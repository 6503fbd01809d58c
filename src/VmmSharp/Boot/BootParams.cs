using System.Runtime.InteropServices;

namespace VmmSharp.Boot;

/// <summary>
/// The zero page (struct boot_params, Documentation/arch/x86/zero-page.rst): the offsets this loader fills.
/// Everything else stays zero.
/// </summary>
internal static class BootParams
{
    public const int Size = 4096;
    public const int AcpiRsdpAddress = 0x070;
    public const int ExtRamdiskImage = 0x0c0;
    public const int ExtRamdiskSize = 0x0c4;
    public const int ExtCmdLinePtr = 0x0c8;
    public const int E820Entries = 0x1e8;
    public const int E820Table = 0x2d0;
    public const int E820MaxEntries = 128;
}

/// <summary>struct boot_e820_entry (20 bytes, packed).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BootE820Entry
{
    public ulong Address;
    public ulong Size;
    public uint Type;
}
