using VmmSharp.Memory;

namespace VmmSharp.Arch.X86;

/// <summary>
/// Every guest-physical address the x86 boot path uses, in one place.
/// Low memory (below 1 MiB) holds the boot-time tables; the kernel loads at 1 MiB or above;
/// RAM that would overlap the 32-bit MMIO hole [3 GiB, 4 GiB) is placed above 4 GiB.
/// </summary>
public static class Layout
{
    /// <summary>The GDT the entry state loads (6 descriptors: null, unused, code, data, 16-byte TSS).</summary>
    public const ulong Gdt = 0x500;

    /// <summary>An empty IDT; the kernel installs its own before it enables interrupts.</summary>
    public const ulong Idt = 0x540;

    /// <summary>The Xen PVH <c>hvm_start_info</c> structure.</summary>
    public const ulong PvhStartInfo = 0x1000;

    /// <summary>The PVH module list (<c>hvm_modlist_entry</c> array).</summary>
    public const ulong PvhModuleList = 0x1040;

    /// <summary>The PVH memory map (<c>hvm_memmap_table_entry</c> array), up to <see cref="PvhMemoryMapEnd"/>.</summary>
    public const ulong PvhMemoryMap = 0x1100;

    /// <summary>The first address after the PVH memory map area.</summary>
    public const ulong PvhMemoryMapEnd = 0x2000;

    /// <summary>The Multiboot information structure (MBI).</summary>
    public const ulong MultibootInfo = 0x2000;

    /// <summary>The Multiboot module list.</summary>
    public const ulong MultibootModuleList = 0x2080;

    /// <summary>The boot loader name string the MBI points to.</summary>
    public const ulong MultibootBootLoaderName = 0x2060;

    /// <summary>The Multiboot memory map, up to <see cref="MultibootMemoryMapEnd"/>.</summary>
    public const ulong MultibootMemoryMap = 0x2100;

    /// <summary>The first address after the Multiboot memory map area.</summary>
    public const ulong MultibootMemoryMapEnd = 0x3000;

    /// <summary>
    /// The initial stack pointer for a 64-bit Linux entry (16-byte aligned, growing down into [0x3000, 0x7000)).
    /// The boot protocol does not require one, but a valid stack costs nothing and helps a kernel that pushes early.
    /// </summary>
    public const ulong BootStackPointer = 0x6ff0;

    /// <summary>The Linux zero page (<c>struct boot_params</c>, 4 KiB).</summary>
    public const ulong ZeroPage = 0x7000;

    /// <summary>
    /// The end of the setup heap that <c>heap_end_ptr</c> describes, as an offset from the (absent) real-mode code;
    /// boot.rst's example value for protocol 2.02 and later.
    /// </summary>
    public const ushort LinuxSetupHeapEnd = 0xe000;

    /// <summary>The identity-mapping PML4 (one page).</summary>
    public const ulong Pml4 = 0x9000;

    /// <summary>The identity-mapping page-directory-pointer table (one page).</summary>
    public const ulong Pdpt = 0xa000;

    /// <summary>The first of <see cref="PageDirectoryCount"/> page directories of 2 MiB pages.</summary>
    public const ulong PageDirectories = 0xb000;

    /// <summary>How many page directories: each maps 1 GiB, so 4 map the whole 32-bit space.</summary>
    public const int PageDirectoryCount = 4;

    /// <summary>The kernel command line.</summary>
    public const ulong CommandLine = 0x20000;

    /// <summary>The room for the kernel command line, including its terminating NUL.</summary>
    public const int CommandLineCapacity = 0x10000;

    /// <summary>Module command lines (Multiboot), NUL-terminated strings one after another.</summary>
    public const ulong ModuleCommandLines = 0x30000;

    /// <summary>The room for module command lines.</summary>
    public const int ModuleCommandLinesCapacity = 0x1000;

    /// <summary>
    /// The extended BIOS data area starts here: the last KiB of base memory. Usable low RAM ends here, and
    /// [<see cref="EbdaStart"/>, <see cref="HighMemoryStart"/>) is reserved (EBDA, VGA, option ROMs, BIOS).
    /// </summary>
    public const ulong EbdaStart = 0x9fc00;

    /// <summary>The MP floating pointer and configuration table: the last KiB of base memory, where Linux looks.</summary>
    public const ulong MpTable = EbdaStart;

    /// <summary>The first address the MP table must not reach (the end of the reserved legacy area).</summary>
    public const ulong MpTableLimit = HighMemoryStart;

    /// <summary>
    /// The ACPI tables, RSDP first: in the BIOS area [0xE0000, 0x100000) where an OS scans for the RSDP, and
    /// inside the reserved legacy range of the memory map.
    /// </summary>
    public const ulong AcpiTables = 0xE0000;

    /// <summary>The first address the ACPI tables must not reach.</summary>
    public const ulong AcpiTablesLimit = 0xF0000;

    /// <summary>The ACPI sleep control register (hardware-reduced ACPI): writing SLP_EN with SLP_TYP 5 powers off.</summary>
    public const ushort AcpiSleepControlPort = 0x600;

    /// <summary>The ACPI sleep status register.</summary>
    public const ushort AcpiSleepStatusPort = 0x601;

    /// <summary>1 MiB: where high memory starts and where kernels load by default.</summary>
    public const ulong HighMemoryStart = 0x100000;

    /// <summary>The start of the 32-bit MMIO hole (3 GiB): no RAM between here and <see cref="FourGiB"/>.</summary>
    public const ulong MmioHoleStart = 0xC000_0000;

    /// <summary>4 GiB: the end of the 32-bit MMIO hole; RAM beyond <see cref="MmioHoleStart"/> continues here.</summary>
    public const ulong FourGiB = 0x1_0000_0000;

    /// <summary>The IOAPIC's MMIO base.</summary>
    public const uint IoApicAddress = 0xFEC0_0000;

    /// <summary>The local APIC's MMIO base.</summary>
    public const uint LocalApicAddress = 0xFEE0_0000;

    /// <summary>
    /// The first virtio-mmio register window: in the 32-bit MMIO hole, far below the IOAPIC (0xFEC00000), the LAPIC
    /// (0xFEE00000) and the TSS pages below 4 GiB; windows follow each other every <see cref="VirtioMmioStride"/> bytes.
    /// </summary>
    public const ulong VirtioMmioBase = 0xD000_0000;

    /// <summary>The distance between virtio-mmio windows: one 4 KiB window each.</summary>
    public const ulong VirtioMmioStride = 0x1000;

    /// <summary>
    /// The GSIs virtio-mmio devices get, in order: ISA IRQs no legacy device here uses (COM1 4, i8042 1 and 12, PIT 0,
    /// RTC 8, SCI 9 are taken), so the MP table's and MADT's identity ISA mapping routes each to the IOAPIC pin of
    /// the same number, edge-triggered and active-high, and a kernel given only <c>virtio_mmio.device=</c> finds it too.
    /// </summary>
    public static ReadOnlySpan<byte> VirtioMmioGsis => [5, 6, 7, 10, 11, 14, 15, 3];

    /// <summary>How many virtio-mmio devices the layout has room for.</summary>
    public static int VirtioMmioMaxDevices => VirtioMmioGsis.Length;

    /// <summary>The register window and GSI of virtio-mmio device <paramref name="index"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The layout has no slot <paramref name="index"/>.</exception>
    public static MmioDeviceSlot VirtioMmioSlot(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, VirtioMmioMaxDevices);
        return new MmioDeviceSlot(VirtioMmioBase + ((ulong)index * VirtioMmioStride), VirtioMmioStride, VirtioMmioGsis[index]);
    }

    /// <summary>
    /// The IOAPIC pin ISA IRQ 0 (the PIT) arrives on: pin 2, the wiring PC firmware describes with an interrupt
    /// source override and that a KVM machine gets when its GSI routing sends GSI 0 to IOAPIC pin 2 (as QEMU's does).
    /// </summary>
    public const byte Irq0IoApicPin = 2;

    /// <summary>The smallest guest RAM the x86 layout supports: the low tables plus room for a kernel at 1 MiB.</summary>
    public const ulong MinMemorySize = 2 * 1024 * 1024;

    /// <summary>The page size RAM sizes must be multiples of.</summary>
    public const ulong PageSize = 4096;

    /// <summary>
    /// The RAM regions for <paramref name="memSize"/> bytes of guest RAM: [0, min(size, 3 GiB)) and, for what
    /// does not fit below the MMIO hole, [4 GiB, 4 GiB + rest).
    /// </summary>
    /// <exception cref="ArgumentException">The size is below <see cref="MinMemorySize"/> or not a multiple of 4 KiB.</exception>
    public static GuestRegionSpec[] RamRegions(ulong memSize)
    {
        ValidateMemorySize(memSize);
        if (memSize <= MmioHoleStart)
        {
            return [new GuestRegionSpec(0, memSize)];
        }
        ulong high = memSize - MmioHoleStart;
        if (high > ulong.MaxValue - FourGiB)
        {
            throw new ArgumentException($"guest memory size 0x{memSize:x} does not fit in the address space above 4 GiB", nameof(memSize));
        }
        return [new GuestRegionSpec(0, MmioHoleStart), new GuestRegionSpec(FourGiB, high)];
    }

    /// <summary>Checks that <paramref name="memSize"/> is a usable guest RAM size.</summary>
    /// <exception cref="ArgumentException">The size is below <see cref="MinMemorySize"/> or not a multiple of 4 KiB.</exception>
    public static void ValidateMemorySize(ulong memSize)
    {
        if (memSize < MinMemorySize)
        {
            throw new ArgumentException(
                $"guest memory size 0x{memSize:x} ({memSize} bytes) is below the minimum of 0x{MinMemorySize:x} ({MinMemorySize / 1024 / 1024} MiB)", nameof(memSize));
        }
        if (memSize % PageSize != 0)
        {
            throw new ArgumentException(
                $"guest memory size 0x{memSize:x} ({memSize} bytes) is not a multiple of the 0x{PageSize:x}-byte page size", nameof(memSize));
        }
    }
}
