using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

/// <summary>One test per KVM exit the dispatcher delivers as an event.</summary>
public class ExitEventTests
{
    private const ulong MmioAddress = 0x1000_0000; // no RAM there

    [Fact]
    public void MmioReadAndWriteCarryAddressLengthDirectionAndData()
    {
        var writes = new List<(ulong, int, ulong)>();
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.mov(rbx, MmioAddress);
            a.mov(rax, 0x1122_3344_5566_7788UL);
            a.mov(__qword_ptr[rbx], rax);        // 8-byte write
            a.mov(__word_ptr[rbx + 0x10], 0x4242); // 2-byte write
            a.mov(ecx, __dword_ptr[rbx + 0x20]);  // 4-byte read
            a.mov(al, cl);
            a.@out(0xe9, al);
            a.ExitWith(0);
        });
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.Mmio, Mtd.Qual, s =>
        {
            MmioExit m = s.Mmio;
            if (m.IsWrite)
            {
                writes.Add((m.Address, m.Length, m.Value));
            }
            else
            {
                Assert.Equal(MmioAddress + 0x20, m.Address);
                Assert.Equal(4, m.Length);
                m.Value = 'M';
            }
        }));

        run.Run().AssertStopped();
        Assert.Equal([(MmioAddress, 8, 0x1122_3344_5566_7788UL), (MmioAddress + 0x10, 2, 0x4242UL)], writes);
        Assert.Equal("M", run.Output.ToString());
    }

    [Fact]
    public void HltIsDeliveredWithTheRipAfterTheInstruction()
    {
        ulong rip = 0;
        using var run = GuestRun.Create(GuestMode.Protected32, a =>
        {
            a.nop();
            a.hlt();
        });
        Assert.True(run.Vcpu.Register(VcpuEvent.Hlt, Mtd.Rip, s =>
        {
            rip = s.Rip;
            s.Stop(42, "halted");
        }));

        VcpuRunResult result = run.Run();

        Assert.Equal(42, result.Status);
        Assert.Equal(TinyGuest.Entry + 2, rip);
    }

    [Fact]
    public void TripleFaultIsDeliveredAsShutdown()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.ud2(); // no IDT: #UD, then #DF, then a triple fault
        });
        Assert.True(run.Vcpu.Register(VcpuEvent.Shutdown, Mtd.Rip, s => s.Stop(99, $"triple fault at 0x{s.Rip:x}")));

        VcpuRunResult result = run.Run();

        Assert.Equal(VcpuRunOutcome.Stopped, result.Outcome);
        Assert.Equal(99, result.Status);
        Assert.Equal($"triple fault at 0x{TinyGuest.Entry:x}", result.Reason);
    }

    [Fact]
    public void EmulationFailureIsDeliveredAsInternalErrorWithTheInstructionBytes()
    {
        // No KVM emulates VEX instructions; on MMIO (and on PVM, at CPL0 anywhere) this one ends in an emulation failure.
        byte[] insn = [];
        uint suberror = 0;
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.mov(rax, MmioAddress);
            a.vmovdqu(ymm0, __ymmword_ptr[rax]);
            a.ExitWith(0);
        }, extraStartupMtd: Mtd.None, startup: s => s.Cr4 |= 0x40000); // OSXSAVE, so the instruction is not #UD
        Assert.True(run.Vcpu.Register(VcpuEvent.InternalError, Mtd.Qual, s =>
        {
            suberror = s.InternalError.Suberror;
            insn = s.InternalError.InstructionBytes.ToArray();
            s.Stop(1, "emulation failure");
        }));
        Assert.True(run.Vcpu.Register(VcpuEvent.Mmio, Mtd.Qual, s => s.Stop(2, "the host emulated a VEX load")));

        VcpuRunResult result = run.Run();

        Assert.Equal(1, result.Status);
        Assert.Equal(1u, suberror);
        Assert.Equal(new byte[] { 0xc5, 0xfe, 0x6f, 0x00 }, insn.Take(4));
    }

    [Fact]
    public void SingleStepDeliversDebugEventsAtEachInstruction()
    {
        var pcs = new List<ulong>();
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.nop();
            a.nop();
            a.nop();
            a.ExitWith(0);
        }, startup: s => s.Vcpu.SetSingleStep(true));
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.Debug, Mtd.Qual | Mtd.Rip, s =>
        {
            pcs.Add(s.Debug.Pc);
            Assert.Equal(1u, s.Debug.Exception);
            Assert.Equal(s.Rip, s.Debug.Pc);
        }));

        run.Run().AssertStopped();
        Assert.Equal([TinyGuest.Entry + 1, TinyGuest.Entry + 2, TinyGuest.Entry + 3, TinyGuest.Entry + 5], pcs);
    }

    [Fact]
    public void UnknownMsrReadsAndWritesReachUserSpace()
    {
        const uint msr = 0x4b56_0abc; // no such MSR
        ulong written = 0;
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.mov(ecx, msr);
            a.rdmsr();                 // handler answers 0x00000041_00000042
            a.@out(0xe9, al);
            a.mov(eax, edx);
            a.@out(0xe9, al);
            a.mov(eax, 0x1234_5678);
            a.mov(edx, 0x9abc_def0);
            a.wrmsr();
            a.ExitWith(0);
        });
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.MsrRead, Mtd.Qual, s =>
        {
            MsrExit exit = s.Msr;
            Assert.Equal(msr, exit.Index);
            exit.Value = 0x0000_0041_0000_0042;
        }));
        Assert.True(run.Vcpu.Register(VcpuEvent.MsrWrite, Mtd.Qual, s =>
        {
            Assert.Equal(msr, s.Msr.Index);
            written = s.Msr.Value;
        }));

        run.Run().AssertStopped();
        Assert.Equal("BA", run.Output.ToString());
        Assert.Equal(0x9abc_def0_1234_5678UL, written);
    }

    [Fact]
    public void MsrHandlerCanRefuseAnAccessWithGeneralProtection()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.mov(ecx, 0x4b56_0abd);
            a.rdmsr(); // #GP, no IDT: the vCPU shuts down
            a.ExitWith(0);
        });
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.MsrRead, Mtd.Qual, s =>
        {
            MsrExit exit = s.Msr;
            exit.Fault = true;
        }));
        Assert.True(run.Vcpu.Register(VcpuEvent.Shutdown, Mtd.None, s => s.Stop(13, "#GP")));

        Assert.Equal(13, run.Run().Status);
    }

    [Fact]
    public void SystemEventIsDeliveredWhereTheHostCanRaiseOne()
    {
        KvmRequirement.Ensure();
        using (KvmSystem kvm = KvmSystem.Open())
        {
            // On x86 only Hyper-V's reset MSR (and SEV/TDX termination) make KVM report a system event.
            if (!kvm.Has((KvmCapability)44 /* KVM_CAP_HYPERV */))
            {
                Assert.Skip("not run: this host's KVM has no Hyper-V emulation (KVM_CAP_HYPERV = 0), the only way an x86 guest raises KVM_EXIT_SYSTEM_EVENT");
            }
        }
        uint type = 0;
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.mov(ecx, 0x4000_0003); // HV_X64_MSR_RESET
            a.mov(eax, 1);
            a.xor(edx, edx);
            a.wrmsr();
            a.ExitWith(0);
        });
        KvmCpuidEntry[] cpuid = [.. run.Vm.Kvm.GetSupportedCpuid().Where(e => e.Function is < 0x4000_0000 or >= 0x8000_0000),
            new() { Function = 0x4000_0000, Eax = 0x4000_0005, Ebx = 0x7263694d, Ecx = 0x666f736f, Edx = 0x76482074 },
            new() { Function = 0x4000_0001, Eax = 0x3123_7648 },
            new() { Function = 0x4000_0003, Eax = 0xffff, Edx = 0xffff }];
        run.Vcpu.Vcpu.SetCpuid(cpuid);
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.SystemEvent, Mtd.Qual, s =>
        {
            type = s.SystemEvent.Type;
            s.Stop(2, "reset");
        }));

        Assert.Equal(2, run.Run().Status);
        Assert.Equal(2u, type); // KVM_SYSTEM_EVENT_RESET
    }

    [Fact]
    public void EntryFailureIsDeliveredWhereTheHostRefusesAnEntry()
    {
        KvmRequirement.Ensure();
        if (KvmSystem.Virtualization.Kind == HostVirtualizationKind.Pvm)
        {
            Assert.Skip("not run: PVM checks or emulates guest state itself and never reports KVM_EXIT_FAIL_ENTRY " +
                "(tried here: data-type CS, L+D CS, unusable TR, RFLAGS.VM in long mode, non-canonical RIP: each ran or shut down)");
        }
        ulong reason = 0;
        using var run = GuestRun.Create(GuestMode.Long64, a => a.ExitWith(0), startup: s => s.Rflags = 0x20002); // VM=1 in long mode: invalid
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.EntryFailure, Mtd.Qual, s =>
        {
            reason = s.EntryFailure.HardwareReason;
            s.Stop(3, "entry failed");
        }));

        Assert.Equal(3, run.Run().Status);
        Assert.NotEqual(0UL, reason);
    }
}
