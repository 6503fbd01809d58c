using VmmSharp.Memory;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;

namespace VmmSharp.Tests.Vm;

public class VirtualMachineCpuCountTests
{
    [Fact]
    public void NoMoreVcpusThanTheCpuCountCanBeAdded()
    {
        KvmRequirement.Ensure();
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(1 << 20));
        vm.CpuCount = 2;
        vm.AddVcpu();
        vm.AddVcpu();
        var e = Assert.Throws<InvalidOperationException>(() => vm.AddVcpu());
        Assert.Contains("has 2 CPU(s) and all exist", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheCpuCountIsFixedOnceAVcpuExists()
    {
        // Otherwise the vCPUs created before and after would describe different machines in CPUID.
        KvmRequirement.Ensure();
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(1 << 20));
        vm.CpuCount = 2;
        vm.AddVcpu();
        Assert.Throws<InvalidOperationException>(() => vm.CpuCount = 3);
        Assert.Equal(2, vm.CpuCount);
    }
}
