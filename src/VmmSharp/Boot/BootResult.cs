using VmmSharp.Arch.X86;

namespace VmmSharp.Boot;

/// <summary>What a loader did: the format, the CPU state at entry, the memory map it told the kernel, and where it put things.</summary>
public sealed record BootResult
{
    /// <summary>The boot protocol used.</summary>
    public required KernelFormat Format { get; init; }

    /// <summary>The state the boot CPU starts in.</summary>
    public required X86EntryState EntryState { get; init; }

    /// <summary>The memory map given to the kernel.</summary>
    public required E820Map MemoryMap { get; init; }

    /// <summary>The first byte of the loaded kernel.</summary>
    public required ulong KernelStart { get; init; }

    /// <summary>The first byte after the kernel (for a bzImage, after the room its init_size asks for).</summary>
    public required ulong KernelEnd { get; init; }

    /// <summary>The boot information: hvm_start_info (PVH), the MBI (Multiboot) or the zero page (Linux).</summary>
    public required ulong BootInfoAddress { get; init; }

    /// <summary>The kernel command line's address.</summary>
    public required ulong CommandLineAddress { get; init; }

    /// <summary>The initrd's address, or null when there is none.</summary>
    public ulong? InitrdAddress { get; init; }

    /// <summary>The initrd's size in bytes (0 when there is none).</summary>
    public ulong InitrdSize { get; init; }

    /// <summary>The MP floating pointer's address, or null when no MP table was written.</summary>
    public ulong? MpTableAddress { get; init; }

    /// <summary>The ACPI RSDP's address, or null when no ACPI tables were written.</summary>
    public ulong? AcpiRsdpAddress { get; init; }
}
