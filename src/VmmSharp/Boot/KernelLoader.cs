using System.Runtime.InteropServices;
using VmmSharp.Arch.X86;
using VmmSharp.Arch.X86.Acpi;
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
        // Every format gets an MP table (how a kernel without ACPI finds the IOAPIC and the other CPUs) and the
        // ACPI tables (how a modern kernel finds them, and how it powers off).
        ulong rsdp = AcpiTables.Write(memory, request.CpuCount, request.VirtioMmioDevices);
        switch (result.Format)
        {
            case KernelFormat.Pvh:
                memory.Write(Layout.PvhStartInfo + (ulong)Marshal.OffsetOf<HvmStartInfo>(nameof(HvmStartInfo.RsdpAddress)), rsdp);
                break;
            case KernelFormat.BzImage:
                memory.Write(Layout.ZeroPage + BootParams.AcpiRsdpAddress, rsdp); // boot protocol 2.14; older kernels scan
                break;
            default:
                break; // Multiboot kernels scan the BIOS area, where the RSDP is
        }
        return result with { MpTableAddress = MpTable.Write(memory, request.CpuCount), AcpiRsdpAddress = rsdp };
    }
}
