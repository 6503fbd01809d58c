using VmmSharp.Arch.X86;
using VmmSharp.Kvm;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Machine;

public class CpuidPolicyMachineTests
{
    /// <summary>A kernel that reads CPUID leaf 1 at CPL0 (emulated on PVM, so KVM_SET_CPUID2 holds) and debug-exits with its CX16 bit.</summary>
    private static readonly byte[] Cx16Reporter = GuestImages.BzImageRunning(a =>
    {
        a.mov(eax, 1);
        a.xor(ecx, ecx);
        a.cpuid();
        a.shr(ecx, 13);
        a.and(ecx, 1);
        a.mov(eax, ecx);
        a.@out(0xf4, al);
        a.hlt();
    });

    private static bool GuestSeesCx16(CpuidPolicy policy)
    {
        string kernel = GuestImages.Write(Cx16Reporter, "cx16");
        try
        {
            MachineRun run = MachineRun.Start(new MachineOptions(kernel) { CpuidPolicy = policy }, TimeSpan.FromSeconds(20));
            Assert.True(run.Result.Outcome == MachineOutcome.DebugExit, run.Describe());
            return run.Result.ExitStatus == 3; // (1 << 1) | 1
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Fact]
    public void TheDefaultPolicyHidesCx16ExactlyWhereTheHostIsPvmAndNoneShowsWhatKvmOffers()
    {
        KvmRequirement.Ensure();
        using KvmSystem kvm = KvmSystem.Open();
        bool offered = kvm.GetSupportedCpuid().Any(e => e.Function == 1 && (e.Ecx & (1u << 13)) != 0);
        bool pvm = PcMachine.HostVirtualization.Kind == HostVirtualizationKind.Pvm;
        Assert.Equal(offered && !pvm, GuestSeesCx16(CpuidPolicy.Auto));
        Assert.Equal(offered, GuestSeesCx16(CpuidPolicy.None));
    }

    [Fact]
    public void AnExplicitMaskAddsToThePolicyOff()
    {
        KvmRequirement.Ensure();
        string kernel = GuestImages.Write(Cx16Reporter, "cx16");
        try
        {
            var options = new MachineOptions(kernel) { CpuidPolicy = CpuidPolicy.None, CpuidMasks = [CpuidMask.Parse("1:ecx:0x2000")] };
            MachineRun run = MachineRun.Start(options, TimeSpan.FromSeconds(20));
            Assert.Equal(1, run.Result.ExitStatus); // CX16 hidden by the mask alone
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
