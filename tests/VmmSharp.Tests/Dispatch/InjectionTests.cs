using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

/// <summary>The INJ group: interrupt windows, external interrupts and exceptions.</summary>
public class InjectionTests
{
    /// <summary>Installs a 64-bit interrupt gate for <paramref name="vector"/> pointing at <paramref name="handler"/>.</summary>
    private static void InstallGate(Assembler a, int vector, Label handler)
    {
        ulong gate = TinyGuestLayout.Idt + (ulong)(vector * 16);
        a.lea(rax, __[handler]);
        a.mov(rbx, gate);
        a.mov(__word_ptr[rbx], ax);
        a.mov(__word_ptr[rbx + 2], TinyGuestLayout.KernelCode64);
        a.mov(__word_ptr[rbx + 4], 0x8e00); // present, DPL 0, 64-bit interrupt gate
        a.shr(rax, 16);
        a.mov(__word_ptr[rbx + 6], ax);
        a.shr(rax, 16);
        a.mov(__dword_ptr[rbx + 8], eax);
    }

    [Fact]
    public void InterruptWindowOpensAndAnInjectedInterruptReachesTheGuest()
    {
        int windows = 0;
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            Label isr = a.CreateLabel(), spin = a.CreateLabel();
            InstallGate(a, 0x30, isr);
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
            InstallGate(a, 0x31, isr);
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
    public void InjectedExceptionWithErrorCodeReachesTheGuestsHandler()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            Label handler = a.CreateLabel();
            InstallGate(a, 13, handler);
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
    public void InjectingAnInterruptWithoutNamingInjIsRefused()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a => a.ExitWith(0));
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, s => s.InjectInterrupt(0x30)));

        VcpuRunResult result = run.Run();

        Assert.Equal(VcpuRunOutcome.Failed, result.Outcome);
        Assert.Contains("Inj", result.Reason, StringComparison.Ordinal);
    }
}
