using VmmSharp.Arch.X86;
using VmmSharp.Kvm;
using VmmSharp.Memory;

namespace VmmSharp.Machine;

/// <content>Checks of the options against the host, with messages that name the option and its value.</content>
public sealed partial class PcMachine
{
    /// <summary>Reads the kernel and initrd, each bounded by the RAM below 4 GiB where the loaders place them.</summary>
    private static (byte[] Kernel, byte[] Initrd) ReadImages(MachineOptions options)
    {
        ulong below4G = Math.Min(options.MemorySize, Layout.MmioHoleStart);
        string limitText = $"the guest's {Size(below4G)} of RAM below 4 GiB";
        byte[] kernel = ImageFile.Read(options.KernelPath, "kernel image", nameof(MachineOptions.KernelPath), (long)below4G, limitText);
        byte[] initrd = options.InitrdPath is null
            ? []
            : ImageFile.Read(options.InitrdPath, "initrd", nameof(MachineOptions.InitrdPath), (long)below4G, limitText);
        return (kernel, initrd);
    }

    private static void ValidateDeadline(TimeSpan? deadline)
    {
        if (deadline is { } d && (d <= TimeSpan.Zero || d > MachineOptions.MaxDeadline))
        {
            throw new MachineConfigurationException(nameof(MachineOptions.Deadline),
                $"deadline of {d.TotalSeconds:0.###} s is out of range: more than 0 and at most {MachineOptions.MaxDeadline.TotalSeconds:0} s (null for none)");
        }
    }

    private static void ValidateProfileInterval(TimeSpan? interval)
    {
        if (interval is { } i && (i < TimeSpan.FromMilliseconds(1) || i > TimeSpan.FromSeconds(1)))
        {
            throw new MachineConfigurationException(nameof(MachineOptions.ProfileInterval),
                $"profile interval of {i.TotalMilliseconds:0.###} ms is out of range: 1 ms to 1 s (null for no profile)");
        }
    }

    private static GuestRegionSpec[] ValidateMemory(ulong size)
    {
        try
        {
            return Layout.RamRegions(size);
        }
        catch (ArgumentException e)
        {
            throw MachineConfigurationException.FromArgument(nameof(MachineOptions.MemorySize), e);
        }
    }

    private static void ValidateCpuCount(int count, KvmSystem kvm)
    {
        int hostMax = kvm.CheckExtension(KvmCapability.MaxVcpus);
        if (hostMax <= 0)
        {
            hostMax = Math.Max(kvm.CheckExtension(KvmCapability.NrVcpus), 4);
        }
        int max = Math.Min(hostMax, MpTable.MaxCpus);
        if (count < 1 || count > max)
        {
            throw new MachineConfigurationException(nameof(MachineOptions.CpuCount),
                $"CPU count {count} is out of range: 1 to {max} (KVM_CAP_MAX_VCPUS here is {hostMax}, the MP table takes {MpTable.MaxCpus})");
        }
    }

    private static void ValidateAddressWidth(ulong size, GuestRegionSpec[] regions, KvmSystem kvm)
    {
        int bits = 36;
        foreach (KvmCpuidEntry e in kvm.GetSupportedCpuid())
        {
            if (e.Function == 0x8000_0008 && (e.Eax & 0xff) != 0)
            {
                bits = (int)(e.Eax & 0xff);
            }
        }
        GuestRegionSpec last = regions[^1];
        ulong end = last.GuestAddress + last.Size;
        if (bits < 64 && end > 1UL << bits)
        {
            throw new MachineConfigurationException(nameof(MachineOptions.MemorySize),
                $"guest memory size {Size(size)} needs guest-physical addresses up to 0x{end:x}, beyond the {bits}-bit physical address width this host's KVM offers");
        }
    }

    private static string Size(ulong bytes) => bytes % (1UL << 20) == 0 ? $"{bytes >> 20} MiB (0x{bytes:x} bytes)" : $"0x{bytes:x} bytes";
}
