namespace VmmSharp.Boot;

/// <summary>What to boot: the kernel, an optional initrd, the command line and the number of CPUs.</summary>
/// <param name="Kernel">The kernel image's bytes.</param>
/// <param name="KernelPath">The kernel's file name; a Multiboot kernel sees it as the first word of its command line.</param>
public sealed record BootRequest(ReadOnlyMemory<byte> Kernel, string KernelPath = "kernel")
{
    /// <summary>The initrd (initramfs) bytes; empty for none. Multiboot passes it as module 0.</summary>
    public ReadOnlyMemory<byte> Initrd { get; init; }

    /// <summary>The initrd's file name: the Multiboot module's command line.</summary>
    public string InitrdPath { get; init; } = "initrd";

    /// <summary>The kernel command line, without the kernel path.</summary>
    public string CommandLine { get; init; } = "";

    /// <summary>The number of vCPUs the MP table describes, 1 to <see cref="Arch.X86.MpTable.MaxCpus"/>.</summary>
    public int CpuCount { get; init; } = 1;

    /// <summary>The virtio-mmio devices the ACPI DSDT describes (the command line is the caller's to extend).</summary>
    public IReadOnlyList<Arch.X86.MmioDeviceSlot> VirtioMmioDevices { get; init; } = [];
}
