using System.Runtime.InteropServices;

namespace VmmSharp.Boot;

/// <summary>
/// The Linux setup header (Documentation/arch/x86/boot.rst, struct setup_header in bootparam.h): 123 bytes that sit
/// at offset 0x1f1 of both the bzImage and the zero page. Fields are named as in the kernel.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct SetupHeader
{
    /// <summary>Where the header starts, in the image and in the zero page.</summary>
    public const int Offset = 0x1f1;

    /// <summary>The header's end as of protocol 2.15 (kernel_info_offset is its last field).</summary>
    public const int End = 0x26c;

    public const ushort BootFlagValue = 0xAA55;
    public const byte LoadedHigh = 0x01;
    public const byte CanUseHeap = 0x80;
    public const ushort XlfKernel64 = 0x1;

    /// <summary>type_of_loader 0xff: a boot loader with no assigned id.</summary>
    public const byte UndefinedLoader = 0xff;

    /// <summary>initrd_addr_max for kernels too old to state it.</summary>
    public const uint DefaultInitrdAddrMax = 0x37ffffff;

    public byte SetupSects;
    public ushort RootFlags;
    public uint SysSize;
    public ushort RamSize;
    public ushort VidMode;
    public ushort RootDev;
    public ushort BootFlag;
    public ushort Jump;
    public uint Header;
    public ushort Version;
    public uint RealmodeSwtch;
    public ushort StartSysSeg;
    public ushort KernelVersion;
    public byte TypeOfLoader;
    public byte LoadFlags;
    public ushort SetupMoveSize;
    public uint Code32Start;
    public uint RamdiskImage;
    public uint RamdiskSize;
    public uint BootsectKludge;
    public ushort HeapEndPtr;
    public byte ExtLoaderVer;
    public byte ExtLoaderType;
    public uint CmdLinePtr;
    public uint InitrdAddrMax;
    public uint KernelAlignment;
    public byte RelocatableKernel;
    public byte MinAlignment;
    public ushort XLoadFlags;
    public uint CmdlineSize;
    public uint HardwareSubarch;
    public ulong HardwareSubarchData;
    public uint PayloadOffset;
    public uint PayloadLength;
    public ulong SetupData;
    public ulong PrefAddress;
    public uint InitSize;
    public uint HandoverOffset;
    public uint KernelInfoOffset;
}
