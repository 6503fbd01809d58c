using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Kvm;

/// <summary>KVM_X86_SET_MSR_FILTER: the trapped ranges accumulate, up to KVM's 16.</summary>
public class MsrFilterTests
{
    private const uint SysenterCs = 0x174, Star = 0xc000_0081;

    [Fact]
    public void EveryTrappedRangeExitsNotJustTheLastOne()
    {
        var seen = new List<uint>();
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.mov(ecx, SysenterCs);
            a.rdmsr();
            a.mov(ecx, Star);
            a.rdmsr();
            a.ExitWith(0);
        });
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.MsrRead, Mtd.Qual, s =>
        {
            seen.Add(s.Msr.Index);
            MsrExit msr = s.Msr;
            msr.Value = 0;
        }));
        run.Vm.Handle.TrapMsrs(SysenterCs, 1);
        run.Vm.Handle.TrapMsrs(Star, 1);

        run.Run().AssertStopped();

        Assert.Equal([SysenterCs, Star], seen);
    }

    [Fact]
    public void ASeventeenthRangeIsRefusedWithAClearMessage()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a => a.ExitWith(0));
        for (uint i = 0; i < 16; i++)
        {
            run.Vm.Handle.TrapMsrs(0x1000 + (i * 0x10), 1);
        }
        run.Vm.Handle.TrapMsrs(0x1000, 1); // already trapped: no new range

        var e = Assert.Throws<InvalidOperationException>(() => run.Vm.Handle.TrapMsrs(0x2000, 1));

        Assert.Contains("16", e.Message, StringComparison.Ordinal);
        Assert.Contains("0x2000", e.Message, StringComparison.Ordinal);
    }
}
