using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

/// <summary>The INJ group: interrupt windows, external interrupts and exceptions.</summary>
public class InjectionTests
{
    [Fact]
    public void InterruptWindowOpensAndAnInjectedInterruptReachesTheGuest()
    {
        int windows = 0;
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            Label isr = a.CreateLabel(), spin = a.CreateLabel();
            a.InstallGate(0x30, isr);
            a.sti();
            a.Label(ref spin);
            a.pause();
            a.jmp(spin);
            a.Label(ref isr);
            a.mov(al, (byte)'I');
            a.@out(0xe9, al);
            a.ExitWith(0);
        }, extraStartupMtd: Mtd.Inj, startup: s => s.RequestInterruptWindow = true);
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.IrqWindow, Mtd.Inj, s =>
        {
            windows++;
            Assert.True(s.InterruptWindowOpen);
            s.InjectInterrupt(0x30);
        }));

        run.Run().AssertStopped();

        Assert.Equal(1, windows);
        Assert.Equal("I", run.Output.ToString());
    }

    [Fact]
    public void AGuestHaltingWithInterruptsOnGetsTheWindowAndWakesToTheInterrupt()
    {
        // "sti; hlt" reaches KVM's HLT exit before an interrupt-window exit; the dispatcher delivers it as the window.
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            Label isr = a.CreateLabel();
            a.InstallGate(0x31, isr);
            a.sti();
            a.hlt();
            a.ExitWith(1); // not reached: the interrupt comes first
            a.Label(ref isr);
            a.mov(al, (byte)'W');
            a.@out(0xe9, al);
            a.ExitWith(0);
        }, extraStartupMtd: Mtd.Inj, startup: s => s.RequestInterruptWindow = true);
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.IrqWindow, Mtd.Inj, s => s.InjectInterrupt(0x31)));
        Assert.True(run.Vcpu.Register(VcpuEvent.Hlt, Mtd.None, s => s.Stop(2, "HLT delivered instead of the window")));

        Assert.Equal(0, run.Run().AssertStopped().Status);
        Assert.Equal("W", run.Output.ToString());
    }

    [Fact]
    public void AHaltWhoseWindowHandlerInjectsNothingIsStillAHalt()
    {
        int windows = 0;
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.sti();
            a.hlt();
            a.ExitWith(1); // the HLT was lost
        }, extraStartupMtd: Mtd.Inj, startup: s => s.RequestInterruptWindow = true);
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.IrqWindow, Mtd.Inj, _ => windows++));
        Assert.True(run.Vcpu.Register(VcpuEvent.Hlt, Mtd.None, s => s.Stop(2, "halted")));

        Assert.Equal(2, run.Run().AssertStopped().Status);
        Assert.Equal(1, windows);
    }

    [Fact]
    public void InjectedExceptionWithErrorCodeReachesTheGuestsHandler()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            Label handler = a.CreateLabel();
            a.InstallGate(13, handler);
            a.@out(0x99, al); // the VMM answers with #GP(0x1234)
            a.ExitWith(1);     // not reached
            a.Label(ref handler);
            a.pop(rax);        // the error code
            a.@out(0xe9, al);
            a.shr(eax, 8);
            a.@out(0xe9, al);
            a.ExitWith(0);
        });
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual | Mtd.Inj, s =>
        {
            IoExit io = s.Io;
            switch (io.Port)
            {
                case 0x99: s.InjectException(13, 0x4142); break;
                case 0xe9: run.Output.Append((char)io.Value); break;
                default: s.Stop((int)io.Value, "exit"); break;
            }
        }));

        VcpuRunResult result = run.Run().AssertStopped();

        Assert.Equal(0, result.Status);
        Assert.Equal("BA", run.Output.ToString());
    }

    [Fact]
    public void AnInjectedNmiReachesTheGuestsNmiHandler()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            Label nmi = a.CreateLabel();
            a.InstallGate(2, nmi);
            a.@out(0x99, al); // the VMM answers with an NMI
            a.ExitWith(1);     // not reached
            a.Label(ref nmi);
            a.ExitWith(0);
        });
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual | Mtd.Inj, s =>
        {
            if (s.Io.Port == 0x99)
            {
                s.InjectNmi();
            }
            else
            {
                s.Stop((int)s.Io.Value, "exit");
            }
        }));

        Assert.Equal(0, run.Run().AssertStopped().Status);
    }

    [Fact]
    public void InjectingTheNmiVectorAsAnExceptionIsRefusedWithAClearMessage()
    {
        ArgumentException? refused = null;
        using var run = GuestRun.Create(GuestMode.Long64, a => a.ExitWith(0));
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual | Mtd.Inj, s =>
        {
            refused = Assert.Throws<ArgumentException>(() => s.InjectException(2));
            s.Stop(0, "done");
        }));

        run.Run().AssertStopped();

        Assert.Contains("InjectNmi", refused!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InjectingAnInterruptWithoutNamingInjIsRefused()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a => a.ExitWith(0));
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, s => s.InjectInterrupt(0x30)));

        VcpuRunResult result = run.Run();

        Assert.Equal(VcpuRunOutcome.Failed, result.Outcome);
        Assert.Contains("Inj", result.Reason, StringComparison.Ordinal);
    }
}
