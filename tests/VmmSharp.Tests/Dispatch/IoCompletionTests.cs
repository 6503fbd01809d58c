using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

/// <summary>
/// RIP at a port-I/O exit differs between hosts (VMX/SVM: at the instruction; KVM's emulator and PVM: past an OUT);
/// after <see cref="VcpuState.CompleteInstruction"/> it is past the instruction everywhere.
/// </summary>
public class IoCompletionTests
{
    private const ulong OutLength = 2; // out 0x80, al = e6 80

    [Theory]
    [InlineData(GuestMode.User64)]
    [InlineData(GuestMode.Long64)]
    public void AtAnOutExitRipIsAtOrPastTheOutAndPastItOnceCompleted(GuestMode mode)
    {
        ulong before = 0, after = 0;
        using var run = GuestRun.Create(mode, a =>
        {
            a.@out(0x80, al);
            a.ExitWith(0);
        });
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual | Mtd.Rip, s =>
        {
            if (s.Io.Port == 0x80)
            {
                before = s.Rip;
                s.CompleteInstruction();
                after = s.Rip;
            }
            else
            {
                s.Stop((int)s.Io.Value, "exit");
            }
        }));

        Assert.Equal(0, run.Run().AssertStopped().Status);

        Assert.Contains(before, new[] { TinyGuest.Entry, TinyGuest.Entry + OutLength });
        Assert.Equal(TinyGuest.Entry + OutLength, after);
    }

    [Theory]
    [InlineData(GuestMode.User64)]
    [InlineData(GuestMode.Long64)]
    public void OnceAnInIsCompletedItsRegisterHoldsTheAnswerAndRipMayBeMoved(GuestMode mode)
    {
        using var run = GuestRun.Create(mode, a =>
        {
            var target = a.CreateLabel();
            a.@in(al, 0x81);
            a.ExitWith(1); // skipped by the handler: 5 bytes
            a.Label(ref target);
            a.@out(0xf4, al);
            a.hlt();
        });
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual | Mtd.Acdb | Mtd.Rip, s =>
        {
            IoExit io = s.Io;
            if (io.Port == 0x81)
            {
                io.Value = 0x5a;
                s.CompleteInstruction();
                Assert.Equal(0x5aUL, s.Rax & 0xff);
                s.Rip += 5;
            }
            else
            {
                s.Stop((int)io.Value, "exit");
            }
        }));

        Assert.Equal(0x5a, run.Run().AssertStopped().Status);
    }

    [Fact]
    public void CompleteInstructionAfterAChangeIsRefused()
    {
        using var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(0));
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual | Mtd.Acdb, s =>
        {
            s.Rax = 1;
            s.CompleteInstruction();
        }));

        VcpuRunResult result = run.Run();

        Assert.Equal(VcpuRunOutcome.Failed, result.Outcome);
        Assert.Contains("complete first, then change the state", result.Reason, StringComparison.Ordinal);
    }
}
