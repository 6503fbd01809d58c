namespace VmmSharp.Devices.Legacy;

/// <summary>
/// The fw_cfg item selectors, numbered as in QEMU's <c>include/standard-headers/linux/qemu_fw_cfg.h</c>.
/// </summary>
internal static class FwCfgKeys
{
    /// <summary>"QEMU", the signature firmware checks first.</summary>
    public const ushort Signature = 0x00;

    /// <summary>The interface revision and features (u32): bit 0 traditional interface, bit 1 DMA.</summary>
    public const ushort Id = 0x01;

    /// <summary>The machine's UUID, 16 bytes.</summary>
    public const ushort Uuid = 0x02;

    /// <summary>The RAM size in bytes (u64).</summary>
    public const ushort RamSize = 0x03;

    /// <summary>Whether there is no graphical display (u16).</summary>
    public const ushort NoGraphic = 0x04;

    /// <summary>The number of CPUs started at boot (u16).</summary>
    public const ushort NbCpus = 0x05;

    /// <summary>The machine id (u32).</summary>
    public const ushort MachineId = 0x06;

    /// <summary>The guest-physical address the kernel is loaded at (u32).</summary>
    public const ushort KernelAddress = 0x07;

    /// <summary>The size of the kernel (u32).</summary>
    public const ushort KernelSize = 0x08;

    /// <summary>The legacy command-line address key (u32), used by non-x86 firmware.</summary>
    public const ushort KernelCommandLine = 0x09;

    /// <summary>The guest-physical address the initrd is loaded at (u32).</summary>
    public const ushort InitrdAddress = 0x0a;

    /// <summary>The size of the initrd (u32).</summary>
    public const ushort InitrdSize = 0x0b;

    /// <summary>The boot device (u16).</summary>
    public const ushort BootDevice = 0x0c;

    /// <summary>The NUMA description.</summary>
    public const ushort Numa = 0x0d;

    /// <summary>Whether the firmware shows a boot menu (u16).</summary>
    public const ushort BootMenu = 0x0e;

    /// <summary>The maximum number of CPUs (u16).</summary>
    public const ushort MaxCpus = 0x0f;

    /// <summary>The kernel's entry point (u32).</summary>
    public const ushort KernelEntry = 0x10;

    /// <summary>The kernel image's bytes.</summary>
    public const ushort KernelData = 0x11;

    /// <summary>The initrd's bytes.</summary>
    public const ushort InitrdData = 0x12;

    /// <summary>The guest-physical address of the command line (u32).</summary>
    public const ushort CommandLineAddress = 0x13;

    /// <summary>The size of the command line including its NUL (u32).</summary>
    public const ushort CommandLineSize = 0x14;

    /// <summary>The command line's bytes, NUL-terminated.</summary>
    public const ushort CommandLineData = 0x15;

    /// <summary>The guest-physical address of the Linux setup code (u32).</summary>
    public const ushort SetupAddress = 0x16;

    /// <summary>The size of the Linux setup code (u32).</summary>
    public const ushort SetupSize = 0x17;

    /// <summary>The Linux setup code's bytes.</summary>
    public const ushort SetupData = 0x18;

    /// <summary>The file directory: a big-endian count, then 64-byte entries.</summary>
    public const ushort FileDir = 0x19;

    /// <summary>The selector of the first named file; the others follow in name order.</summary>
    public const ushort FileFirst = 0x20;

    /// <summary>The selector bit QEMU uses to mark a write (ignored here: the interface is read-only).</summary>
    public const ushort WriteChannel = 0x4000;

    /// <summary>The selector bit of architecture-specific items.</summary>
    public const ushort ArchLocal = 0x8000;

    /// <summary>The selector bits that index an item.</summary>
    public const ushort EntryMask = 0x3fff;
}
