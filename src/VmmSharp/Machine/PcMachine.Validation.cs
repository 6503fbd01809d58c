using VmmSharp.Arch.X86;
using VmmSharp.Kvm;
using VmmSharp.Memory;

namespace VmmSharp.Machine;

/// <content>Checks of the options against the host, with messages that name the option and its value.</content>
public sealed partial class PcMachine
{
    private static byte[] ReadFile(string path, string what, string option)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new MachineConfigurationException(option, $"no {what} given");
        }
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new MachineConfigurationException(option, $"{what} '{path}' not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MachineConfigurationException(option, $"{what} '{path}' cannot be read: {e.Message}", e);
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
