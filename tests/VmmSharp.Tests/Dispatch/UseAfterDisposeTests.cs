using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

/// <summary>Every operation on a disposed VM, vCPU or dispatcher does nothing or throws; none touches freed memory.</summary>
public class UseAfterDisposeTests
{
    private static void Spin(Iced.Intel.Assembler a)
    {
        var loop = a.CreateLabel();
        a.Label(ref loop);
        a.@out(0x80, al);
        a.jmp(loop);
    }

    [Fact]
    public void RecallStopAndReleaseAfterDisposeDoNothing()
    {
        var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(0));
        run.HandleConsoleAndExit();
        run.Run().AssertStopped();
        VcpuDispatcher d = run.Vcpu;
        run.Dispose();

        d.Recall();
        d.RequestStop();
        d.Release();
        run.Vm.Recall(d.Id);
        run.Vm.Release(d.Id);
    }

    [Fact]
    public void StartingTheDispatcherOfADisposedVmThrowsObjectDisposed()
    {
        var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(0));
        VcpuDispatcher d = run.Vcpu;
        run.Dispose();

        Assert.Throws<ObjectDisposedException>(() => { _ = d.Start(); });
        Assert.Throws<ObjectDisposedException>(() => d.Run());
        Assert.Throws<ObjectDisposedException>(() => d.Register(VcpuEvent.Mmio, Mtd.Qual, _ => { }));
    }

    [Fact]
    public void IoctlsOnADisposedVcpuThrowObjectDisposed()
    {
        var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(0));
        KvmVcpu vcpu = run.Vcpu.Vcpu;
        run.Dispose();

        Assert.Throws<ObjectDisposedException>(() => vcpu.GetRegs(out _));
        Assert.Throws<ObjectDisposedException>(() => vcpu.GetMpState());
        Assert.Throws<ObjectDisposedException>(() => vcpu.SyncRequest);
        Assert.Throws<ObjectDisposedException>(() => run.Vm.Handle.CheckExtension(KvmCapability.SyncRegs));
    }

    [Fact]
    public void AVcpuBlockedWhenItsVcpuIsDisposedStillEndsOnStop()
    {
        using var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(0));
        using var blocked = new ManualResetEventSlim();
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, s =>
        {
            s.Block();
            blocked.Set();
        }));
        Task<VcpuRunResult> done = run.Vcpu.Start();
        Assert.True(blocked.Wait(GuestRun.DefaultDeadline));

        run.Vcpu.Vcpu.Dispose(); // the loop keeps kvm_run mapped until it ends
        run.Vcpu.RequestStop();

        Assert.True(done.Wait(GuestRun.DefaultDeadline));
        Assert.Equal(VcpuRunOutcome.Cancelled, done.Result.Outcome);
    }

    [Fact]
    public void RecallRacingDisposeNeverTouchesFreedMemory()
    {
        // Another thread recalls (as a terminal reader thread would) while the VM is being disposed.
        for (int i = 0; i < 200; i++)
        {
            var run = GuestRun.Create(GuestMode.User64, Spin);
            Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, _ => { }));
            Assert.True(run.Vcpu.Register(VcpuEvent.Recall, Mtd.None, _ => { }));
            VcpuDispatcher d = run.Vcpu;
            d.Start();
            using var stop = new ManualResetEventSlim();
            var kicker = new Thread(() =>
            {
                while (!stop.IsSet)
                {
                    d.Recall();
                    d.Release();
                }
                d.Recall();
                d.RequestStop();
            });
            kicker.Start();
            Thread.Sleep(i % 3);
            run.Dispose();
            stop.Set();
            Assert.True(kicker.Join(TimeSpan.FromSeconds(10)));
        }
    }
}
