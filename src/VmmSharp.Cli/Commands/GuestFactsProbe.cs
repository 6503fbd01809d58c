using System.Diagnostics;
using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Memory;
using VmmSharp.Vm;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Cli.Commands;

/// <summary>
/// Facts about guests on this host that only running one shows, measured by two tiny probe VMs (a few ms):
/// whether guest CPL0 code goes through KVM's instruction emulator, and whether a <c>syscall</c> from user mode
/// enters the guest kernel.
/// </summary>
internal static class GuestFactsProbe
{
    private const byte DonePort = 0xf1;
    private const uint MsrStar = 0xc000_0081, MsrLstar = 0xc000_0082, MsrFmask = 0xc000_0084;
    private const ulong EferSce = 1;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(2);

    /// <summary>What the probes saw; a null fact could not be measured, and <see cref="Error"/> says why.</summary>
    public sealed record Facts(bool? Cpl0Emulated, bool? SyscallEntersKernel, TimeSpan Took, string? Error);

    public static Facts Measure()
    {
        var clock = Stopwatch.StartNew();
        try
        {
            bool emulated = Cpl0Emulated();
            bool syscall = SyscallEntersKernel();
            return new Facts(emulated, syscall, clock.Elapsed, null);
        }
        catch (VmmException e)
        {
            return new Facts(null, null, clock.Elapsed, e.Message);
        }
    }

    /// <summary>
    /// <c>fwait</c> at CPL0: hardware runs it (a no-op with no x87 exception pending), KVM's emulator lacks it and
    /// reports an emulation failure. So an emulation failure means CPL0 code is emulated here.
    /// </summary>
    private static bool Cpl0Emulated()
    {
        VcpuRunResult r = Probe(GuestMode.Long64, a =>
        {
            a.wait(); // fwait
            a.@out(DonePort, al);
            a.hlt();
        }, startup: null, done: s => s.Stop(0, "fwait ran"), mtd: Mtd.Qual);
        return r.Status == 1;
    }

    /// <summary>
    /// <c>syscall</c> from CPL3 with EFER.SCE and STAR naming the kernel's code segment: the instruction at LSTAR
    /// then writes a port, and the code segment at that exit tells whether it runs at CPL0 as it should.
    /// </summary>
    private static bool SyscallEntersKernel()
    {
        // syscall (2 bytes) and hlt (1) come first, so LSTAR's target, the out, is at Entry + 3.
        const ulong target = 3;
        VcpuRunResult r = Probe(GuestMode.User64, a =>
        {
            a.syscall();
            a.hlt();
            a.@out(DonePort, al);
            a.hlt();
        }, startup: s =>
        {
            s.Efer |= EferSce;
            ulong star = (ulong)TinyGuestLayout.KernelCode64 << 32;
            s.Vcpu.SetMsrs([MsrStar, MsrLstar, MsrFmask], [star, TinyGuest.Entry + target, 0]);
        }, done: s => s.Stop((s.Cs.Selector & 3) == 0 ? 0 : 2, $"at LSTAR with CS 0x{s.Cs.Selector:x}"), mtd: Mtd.Qual | Mtd.CsSs);
        return r.Status == 0;
    }

    private static VcpuRunResult Probe(GuestMode mode, Action<Assembler> program, Action<VcpuState>? startup, Action<VcpuState> done, Mtd mtd)
    {
        TinyGuest guest = TinyGuest.Assemble(mode, program);
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(TinyGuestLayout.MinimumMemory));
        guest.Load(vm.Memory);
        VcpuDispatcher vcpu = vm.AddVcpu();
        vcpu.Register(VcpuEvent.Startup, TinyGuest.StartupMtd, s =>
        {
            guest.SetStartupState(s);
            startup?.Invoke(s);
        });
        vcpu.Register(VcpuEvent.Io, mtd, s =>
        {
            if (s.Io.Port == DonePort)
            {
                done(s);
            }
            else
            {
                s.Stop(3, $"unexpected port 0x{s.Io.Port:x}");
            }
        });
        vcpu.Register(VcpuEvent.InternalError, Mtd.Qual, s => s.Stop(s.InternalError.Suberror == 1 ? 1 : 3, "emulation failure"));
        VcpuRunResult r = vm.Run(Deadline);
        if (r.Outcome != VcpuRunOutcome.Stopped || r.Status == 3)
        {
            throw new VmmException($"a {mode} probe guest did not end as expected: {r.Reason}");
        }
        return r;
    }
}
