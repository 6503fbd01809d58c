using VmmSharp.Arch.X86;
using VmmSharp.Kvm;

namespace VmmSharp.Tests.Arch;

public class CpuidPolicyTests
{
    private static readonly KvmCpuidEntry[] Offered =
    [
        new() { Function = 1, Ecx = 0x8120_2000 },                  // cx16, x2apic, hypervisor (this PVM host's KVM)
        new() { Function = 7, Index = 0, Flags = 1, Ebx = 0x0180_0002 }, // clflushopt, clwb, tsc_adjust
        new() { Function = 0x4000_0001, Eax = 0x0100_7efb },           // KVM's PV features here
    ];

    private static KvmCpuidEntry Leaf(KvmCpuidEntry[] e, uint function) => e.Single(x => x.Function == function);

    [Fact]
    public void OnPvmAutoHidesCx16ClwbAndThePvFeaturesThatLeadToVmcall()
    {
        IReadOnlyList<HiddenCpuidFeature> hidden = CpuidPolicies.Hidden(CpuidPolicy.Auto, HostVirtualizationKind.Pvm);
        KvmCpuidEntry[] e = Cpuid.ForVcpu(Offered, 0, 1, [.. hidden.Select(h => h.Mask)]);
        Assert.Equal(0u, Leaf(e, 1).Ecx & (1u << 13));                   // cx16
        Assert.Equal(0x8120_0000u, Leaf(e, 1).Ecx);                       // the rest stays
        Assert.Equal(0x0080_0002u, Leaf(e, 7).Ebx);                       // clwb gone, clflushopt kept
        uint pv = Leaf(e, 0x4000_0001).Eax;
        Assert.Equal(0u, pv & ((1u << 7) | (1u << 11) | (1u << 13)));     // PV_UNHALT, PV_SEND_IPI, PV_SCHED_YIELD
        Assert.NotEqual(0u, pv & (1u << 3));                              // kvmclock stays
    }

    [Theory]
    [InlineData(HostVirtualizationKind.Vmx)]
    [InlineData(HostVirtualizationKind.Svm)]
    public void WithHardwareVirtualizationAutoHidesNothing(HostVirtualizationKind host)
    {
        Assert.Empty(CpuidPolicies.Hidden(CpuidPolicy.Auto, host));
    }

    [Fact]
    public void NoneHidesNothingEvenOnPvmAndPvmHidesEverywhere()
    {
        Assert.Empty(CpuidPolicies.Hidden(CpuidPolicy.None, HostVirtualizationKind.Pvm));
        Assert.Same(CpuidPolicies.Pvm, CpuidPolicies.Hidden(CpuidPolicy.Pvm, HostVirtualizationKind.Vmx));
    }

    [Fact]
    public void EveryHiddenFeatureNamesItsBitsAndWhy()
    {
        Assert.All(CpuidPolicies.Pvm, h =>
        {
            Assert.NotEqual(0u, h.Mask.Bits);
            Assert.False(string.IsNullOrWhiteSpace(h.Reason));
        });
        Assert.Equal(CpuidPolicies.Pvm.Count, CpuidPolicies.Pvm.Select(h => h.Name).Distinct().Count());
    }
}
