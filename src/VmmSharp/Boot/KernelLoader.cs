using VmmSharp.Arch.X86;
using VmmSharp.Memory;

namespace VmmSharp.Boot;

/// <summary>The front door: detects the kernel's format, loads it with the matching loader and writes the MP table.</summary>
public static class KernelLoader
{
    /// <summary>
    /// Loads <paramref name="request"/>'s kernel (and initrd) into <paramref name="memory"/> and returns the entry state,
    /// the memory map and where everything went.
    /// </summary>
    /// <exception cref="InvalidKernelImageException">The kernel or initrd cannot be booted; the message says why.</exception>
    /// <exception cref="ArgumentException">The command line is too long.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The CPU count is not in 1..<see cref="MpTable.MaxCpus"/>.</exception>
    public static BootResult Load(GuestMemory memory, BootRequest request)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfLessThan(request.CpuCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(request.CpuCount, MpTable.MaxCpus);
        BootResult result = KernelImage.Detect(request.Kernel.Span) switch
        {
            KernelFormat.Multiboot => MultibootLoader.Load(memory, request),
            KernelFormat.BzImage => LinuxLoader.Load(memory, request),
            KernelFormat.Pvh => PvhLoader.Load(memory, request),
            KernelFormat other => throw new InvalidKernelImageException($"no loader for kernel format {other}"),
        };
        // Every format gets one: it is how a kernel without ACPI finds the IOAPIC and the other CPUs.
        return result with { MpTableAddress = MpTable.Write(memory, request.CpuCount) };
    }
}
