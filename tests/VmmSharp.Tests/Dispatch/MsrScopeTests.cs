using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

/// <summary>User-space MSR exits are VM-wide in KVM; a vCPU without an MSR handler still behaves as KVM alone would.</summary>
public class MsrScopeTests
{
    private const uint UnknownMsr = 0x1234_5678;

    /// <summary>Reads <see cref="UnknownMsr"/>: status 1 if the read returned 0x42, 13 if it raised #GP.</summary>
    private static void ReadUnknownMsr(Assembler a)
    {
        Label gp = a.CreateLabel(), wrong = a.CreateLabel();
        a.InstallGate(13, gp);
        a.mov(ecx, UnknownMsr);
        a.rdmsr();
        a.cmp(eax, 0x42);
        a.jne(wrong);
        a.ExitWith(1);
        a.Label(ref wrong);
        a.ExitWith(2);
        a.Label(ref gp);
        a.ExitWith(13);
    }

    [Fact]
    public void AVcpuWithoutAnMsrHandlerGetsGpForAnUnknownMsrWhileAnotherHasAHandler()
    {
        using var run = GuestRun.Create(GuestMode.Long64, ReadUnknownMsr, vcpus: 2);
        run.HandleConsoleAndExit(run.Vm.Vcpus[0]);
        run.HandleConsoleAndExit(run.Vm.Vcpus[1]);
        Assert.True(run.Vm.Vcpus[0].Register(VcpuEvent.MsrRead, Mtd.Qual, s =>
        {
            Assert.Equal(UnknownMsr, s.Msr.Index);
            MsrExit msr = s.Msr;
            msr.Value = 0x42;
        }));

        Task<VcpuRunResult>[] runs = [run.Vm.Vcpus[0].Start(), run.Vm.Vcpus[1].Start()];

        Assert.True(Task.WaitAll(runs, GuestRun.DefaultDeadline));
        Assert.Equal(1, runs[0].Result.AssertStopped().Status);
        Assert.Equal(13, runs[1].Result.AssertStopped().Status);
    }
}
