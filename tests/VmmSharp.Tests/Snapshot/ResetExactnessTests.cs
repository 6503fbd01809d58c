using System.Runtime.InteropServices;
using VmmSharp.Dispatch;
using VmmSharp.Kvm;
using VmmSharp.Machine;
using VmmSharp.State;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Snapshot;

/// <summary>
/// The in-process reset (<see cref="PcMachine.Restore(MachineSnapshot)"/>) gives back exactly the snapshot's state,
/// whatever the guest and the host changed meanwhile: its faster paths (discarding only the pages copied on write,
/// registers and events through the sync area, capabilities asked once) must not leave anything behind.
/// </summary>
public sealed class ResetExactnessTests : IDisposable
{
    private const ulong Flag = 0x300000, GuestPage = 0x400000, HostRange = 0x500000;
    private const uint MsrSysenterEsp = 0x175;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("vmmsharp-reset-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// CPL3: '.' on COM1 ("ready": snapshot now), wait for the flag, then change every general-purpose register, an SSE
    /// register, COM1's scratch register and a page of memory, and tell the host through port 0x80; then spin.
    /// </summary>
    private static byte[] Changer() => SnapshotGuests.AtCpl3(a =>
    {
        Iced.Intel.Label wait = a.CreateLabel(), spin = a.CreateLabel();
        a.mov(dx, 0x3f8);
        a.mov(al, (byte)'.');
        a.@out(dx, al);
        a.mov(rbx, Flag);
        a.Label(ref wait);
        a.cmp(__byte_ptr[rbx], 0);
        a.je(wait);
        a.mov(rax, 0x1111_2222_3333_4444UL);
        a.movq(xmm3, rax);
        a.mov(rbx, GuestPage);
        a.mov(__qword_ptr[rbx], rax);
        foreach (var r in new[] { rcx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15 })
        {
            a.mov(r, rax);
        }
        a.mov(dx, 0x3ff); // COM1's scratch register
        a.mov(al, 0x5a);
        a.@out(dx, al);
        a.@out(0x80, al);
        a.Label(ref spin);
        a.jmp(spin);
    });

    [Fact]
    public void AResetAfterTheGuestAndHostChangedRegistersMsrsTimerDevicesAndMemoryGivesExactlyTheSnapshotsState()
    {
        KvmRequirement.Ensure();
        string kernel = Path.Combine(_dir, "changer");
        File.WriteAllBytes(kernel, Changer());
        using var console = new CapturedConsole();
        using var machine = new PcMachine(new MachineOptions(kernel) { MemorySize = 32 << 20, Console = console.Console });
        VcpuDispatcher bsp = machine.Vm.Vcpus[0];
        KvmVcpu vcpu = bsp.Vcpu;
        Task<MachineResult> run = Task.Factory.StartNew(machine.Run, TaskCreationOptions.LongRunning);
        Assert.True(SpinWait.SpinUntil(() => console.Text.Contains('.', StringComparison.Ordinal) || run.IsCompleted, Bound), "the guest printed nothing");
        machine.Pause();
        string state = Path.Combine(_dir, "state"), mem = Path.Combine(_dir, "mem");
        machine.CreateSnapshot(state, mem);
        uint[] msrs = VcpuSavedState.SavedMsrs(vcpu);
        byte[] expected = Capture(machine, msrs);
        var snapshot = MachineSnapshot.Load(state, mem);

        for (int round = 0; round < 3; round++)
        {
            // The guest changes its registers, SSE, COM1 and memory; the host its MSRs, LAPIC timer, debug registers, memory.
            machine.Vm.Memory.Write(Flag, (byte)1);
            long before = bsp.ExitCount(VcpuEvent.Io);
            machine.Resume();
            Assert.True(SpinWait.SpinUntil(() => bsp.ExitCount(VcpuEvent.Io) > before + 1 || run.IsCompleted, Bound), "the guest did not change its state");
            machine.Pause();
            Assert.Equal(1, vcpu.WriteMsrs([MsrSysenterEsp], [0xdead_b000UL + (ulong)round]));
            vcpu.GetLapic(out KvmLapicState lapic);
            MemoryMarshal.Write(lapic[0x320..], 0x2_00ef); // LVT timer: periodic, vector 0xef, unmasked
            MemoryMarshal.Write(lapic[0x380..], 0x7fff_ffff); // initial count: the timer runs
            vcpu.SetLapic(lapic);
            vcpu.GetDebugRegs(out KvmDebugRegs debug);
            debug.Db[0] = 0x1234_5000;
            vcpu.SetDebugRegs(debug);
            machine.Vm.Memory.Fill(HostRange, 1 << 20, 0xa5);
            Assert.NotEqual(expected, Capture(machine, msrs));

            machine.Restore(snapshot);

            Assert.Equal(VmState.Paused, machine.State);
            Assert.Equal(expected, Capture(machine, msrs));
        }

        // And the guest runs on from the snapshot: it waits for the flag again, and changes its state once more.
        machine.Vm.Memory.Write(Flag, (byte)1);
        long io = bsp.ExitCount(VcpuEvent.Io);
        machine.Resume();
        Assert.True(SpinWait.SpinUntil(() => bsp.ExitCount(VcpuEvent.Io) > io + 1 || run.IsCompleted, Bound), "the reset guest did not run on");
        machine.RequestStop(0, "done");
        Assert.True(run.Wait(Bound));
    }

    /// <summary>
    /// Everything the reset restores, as bytes: the vCPU's saved state (the TSC left out: it runs on), the PICs and the
    /// IOAPIC, every device's state, and the pages the guest and the host write.
    /// </summary>
    private static byte[] Capture(PcMachine machine, uint[] msrs)
    {
        var vcpu = new VcpuSavedState();
        vcpu.Capture(machine.Vm.Vcpus[0].Vcpu, msrs);
        for (int i = 0; i < vcpu.MsrIndices.Length; i++)
        {
            if (vcpu.MsrIndices[i] == 0x10)
            {
                vcpu.MsrValues[i] = 0;
            }
        }
        var writer = new StateWriter(16 << 10);
        vcpu.SaveState(writer);
        foreach (uint chip in new[] { KvmIrqchip.PicMaster, KvmIrqchip.PicSlave, KvmIrqchip.IoApic })
        {
            machine.Vm.Handle.GetIrqchip(chip, out KvmIrqchip state);
            writer.WriteStruct(state);
        }
        machine.SaveDevices(writer);
        byte[] pages = new byte[(2 * 4096) + (1 << 20)];
        machine.Vm.Memory.Read(Flag, pages.AsSpan(0, 4096));
        machine.Vm.Memory.Read(GuestPage, pages.AsSpan(4096, 4096));
        machine.Vm.Memory.Read(HostRange, pages.AsSpan(8192));
        writer.WriteBytes(pages);
        return writer.WrittenSpan.ToArray();
    }
}
