using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Vm;

/// <summary>The VM's state machine: configured → running ⇄ paused → stopped, driven from another thread.</summary>
public class VmLifecycleTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);


    private static (Task<VcpuRunResult> Run, GuestRun Guest) Start(int vcpus = 1)
    {
        var guest = GuestRun.Create(GuestMode.User64, AsmExtensions.CountForever, vcpus);
        Task<VcpuRunResult> run = Task.Factory.StartNew(() => guest.Vm.Run(Bound), TaskCreationOptions.LongRunning);
        SpinWait.SpinUntil(() => guest.Vm.State == VmState.Running, Bound);
        return (run, guest);
    }

    [Fact]
    public void AVmIsConfiguredUntilItRuns()
    {
        using var guest = GuestRun.Create(GuestMode.User64, AsmExtensions.CountForever);
        Assert.Equal(VmState.Configured, guest.Vm.State);
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(guest.Vm.Pause);
        Assert.Contains("configured", e.Message);
    }

    [Fact]
    public void PauseParksEveryVcpuAndTheGuestMakesNoProgressUntilResume()
    {
        (Task<VcpuRunResult> run, GuestRun guest) = Start(vcpus: 2);
        using (guest)
        {
            Thread.Sleep(50);
            guest.Vm.Pause();
            Assert.Equal(VmState.Paused, guest.Vm.State);
            Assert.All(guest.Vm.Vcpus, v => Assert.True(v.IsPaused));

            // Parked vCPUs hold still: RAX read twice, some time apart, is the same.
            guest.Vm.Vcpus[0].Vcpu.GetRegs(out KvmRegs first);
            Thread.Sleep(30);
            guest.Vm.Vcpus[0].Vcpu.GetRegs(out KvmRegs second);
            Assert.NotEqual(0UL, first.Rax);
            Assert.Equal(first.Rax, second.Rax);

            guest.Vm.Resume();
            Assert.Equal(VmState.Running, guest.Vm.State);
            Assert.True(SpinWait.SpinUntil(() =>
            {
                guest.Vm.Pause();
                guest.Vm.Vcpus[0].Vcpu.GetRegs(out KvmRegs later);
                guest.Vm.Resume();
                return later.Rax != second.Rax;
            }, Bound), "the guest did not run on after Resume");
            guest.Vm.Dispose();
            Assert.True(run.Wait(Bound));
            Assert.Equal(VmState.Stopped, guest.Vm.State);
        }
    }

    [Fact]
    public void PausingTwiceIsRefused()
    {
        (Task<VcpuRunResult> run, GuestRun guest) = Start();
        using (guest)
        {
            guest.Vm.Pause();
            InvalidOperationException e = Assert.Throws<InvalidOperationException>(guest.Vm.Pause);
            Assert.Contains("paused", e.Message);
        }
        Assert.True(run.Wait(Bound));
    }

    [Fact]
    public void ResumingARunningVmIsRefused()
    {
        (Task<VcpuRunResult> run, GuestRun guest) = Start();
        using (guest)
        {
            InvalidOperationException e = Assert.Throws<InvalidOperationException>(guest.Vm.Resume);
            Assert.Contains("running, not paused", e.Message);
        }
        Assert.True(run.Wait(Bound));
    }

    [Fact]
    public void AStoppedVmCannotBeResumedOrRunAgain()
    {
        using var guest = GuestRun.Create(GuestMode.User64, a =>
        {
            a.mov(al, 0);
            a.@out(0xf4, al);
        });
        guest.HandleConsoleAndExit();
        guest.Run().AssertStopped();
        Assert.Equal(VmState.Stopped, guest.Vm.State);
        Assert.Contains("stopped", Assert.Throws<InvalidOperationException>(guest.Vm.Resume).Message);
        Assert.Contains("stopped", Assert.Throws<InvalidOperationException>(() => guest.Vm.Run(Bound)).Message);
    }

    [Fact]
    public void APauseRacingAnExitingGuestNeverLosesTheRecall()
    {
        // The guest exits on every loop, so pause recalls land before, during and after KVM_RUN and handlers.
        using var guest = GuestRun.Create(GuestMode.User64, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.@out(0x80, al);
            a.jmp(loop);
        });
        Assert.True(guest.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, _ => { }));
        Task<VcpuRunResult> run = Task.Factory.StartNew(() => guest.Vm.Run(Bound), TaskCreationOptions.LongRunning);
        Assert.True(SpinWait.SpinUntil(() => guest.Vm.State == VmState.Running, Bound));
        for (int i = 0; i < 200; i++)
        {
            guest.Vm.Pause();
            long exits = guest.Vcpu.ExitCount(VcpuEvent.Io);
            Thread.SpinWait(2000);
            Assert.Equal(exits, guest.Vcpu.ExitCount(VcpuEvent.Io));
            guest.Vm.Resume();
        }
        guest.Vm.Dispose();
        Assert.True(run.Wait(Bound));
    }
}
