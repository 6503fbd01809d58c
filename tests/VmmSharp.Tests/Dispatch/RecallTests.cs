using System.Diagnostics;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

/// <summary>Recall from another thread, and block / release.</summary>
public class RecallTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);


    [Fact]
    public void RecallKicksASpinningGuestAndTheHandlerRunsOnTheVcpuThread()
    {
        int handlerThread = 0;
        ulong rip = 0;
        using var entered = new ManualResetEventSlim();
        using var run = GuestRun.Create(GuestMode.User64, AsmExtensions.CountForever, startup: _ => entered.Set());
        Assert.True(run.Vcpu.Register(VcpuEvent.Recall, Mtd.Rip, s =>
        {
            handlerThread = Environment.CurrentManagedThreadId;
            rip = s.Rip;
            s.Stop(0, "recalled");
        }));
        Task<VcpuRunResult> done = run.Vcpu.Start();
        Assert.True(entered.Wait(Bound));
        Thread.Sleep(20); // let it enter the guest

        var latency = Stopwatch.StartNew();
        run.Vm.Recall(run.Vcpu.Id);
        Assert.True(done.Wait(Bound), "the recall was lost");
        latency.Stop();

        done.Result.AssertStopped();
        Assert.NotEqual(Environment.CurrentManagedThreadId, handlerThread);
        Assert.InRange(rip, TinyGuest.Entry, TinyGuest.Entry + 8);
        Assert.True(latency.Elapsed < TimeSpan.FromSeconds(1), $"recall took {latency.Elapsed.TotalMilliseconds} ms");
    }

    [Fact]
    public void NoRecallIsLostUnderARace()
    {
        // The guest exits all the time, so recalls land before, during and after KVM_RUN and handlers.
        const int recalls = 2000;
        int delivered = 0;
        using var run = GuestRun.Create(GuestMode.User64, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.@out(0x80, al);
            a.jmp(loop);
        });
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, _ => { }));
        Assert.True(run.Vcpu.Register(VcpuEvent.Recall, Mtd.None, s =>
        {
            if (Interlocked.Increment(ref delivered) == recalls)
            {
                s.Stop(0, "all recalls delivered");
            }
        }));
        Task<VcpuRunResult> done = run.Vcpu.Start();
        var random = new Random(7);
        for (int i = 1; i <= recalls; i++)
        {
            run.Vcpu.Recall();
            var wait = Stopwatch.StartNew();
            while (Volatile.Read(ref delivered) < i)
            {
                Assert.True(wait.Elapsed < Bound, $"recall {i} of {recalls} was lost");
                Thread.SpinWait(random.Next(1, 200));
            }
        }

        Assert.True(done.Wait(Bound));
        done.Result.AssertStopped();
        Assert.Equal(recalls, run.Vcpu.ExitCount(VcpuEvent.Recall));
    }

    [Fact]
    public void ABlockedVcpuWaitsUntilReleased()
    {
        using var blocked = new ManualResetEventSlim();
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.hlt();
            a.mov(al, (byte)'r');
            a.@out(0xe9, al);
            a.ExitWith(0);
        });
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.Hlt, Mtd.None, s =>
        {
            s.Block();
            blocked.Set();
        }));
        Task<VcpuRunResult> done = run.Vcpu.Start();
        Assert.True(blocked.Wait(Bound));

        Assert.False(done.Wait(200), "the vCPU ran on while blocked");
        Assert.Equal(string.Empty, run.Output.ToString());

        run.Vm.Release(run.Vcpu.Id);
        Assert.True(done.Wait(Bound));
        done.Result.AssertStopped();
        Assert.Equal("r", run.Output.ToString());
    }

    [Fact]
    public void AReleaseBeforeTheBlockIsNotLost()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.hlt();
            a.ExitWith(0);
        });
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.Hlt, Mtd.None, s =>
        {
            run.Vcpu.Release(); // the interrupt arrives before the vCPU blocks
            s.Block();
        }));
        run.Vcpu.Start();
        Assert.True(run.Vcpu.Completion.Wait(Bound));
        run.Vcpu.Completion.Result.AssertStopped();
    }

    [Fact]
    public void RecallWakesABlockedVcpu()
    {
        using var blocked = new ManualResetEventSlim();
        using var run = GuestRun.Create(GuestMode.Long64, a => a.hlt());
        Assert.True(run.Vcpu.Register(VcpuEvent.Hlt, Mtd.None, s =>
        {
            s.Block();
            blocked.Set();
        }));
        Assert.True(run.Vcpu.Register(VcpuEvent.Recall, Mtd.None, s => s.Stop(5, "recalled while blocked")));
        run.Vcpu.Start();
        Assert.True(blocked.Wait(Bound));
        run.Vcpu.Recall();
        Assert.True(run.Vcpu.Completion.Wait(Bound));
        Assert.Equal(5, run.Vcpu.Completion.Result.AssertStopped().Status);
    }

    [Fact]
    public void RequestStopEndsARunFromOutside()
    {
        using var run = GuestRun.Create(GuestMode.User64, AsmExtensions.CountForever);
        run.Vcpu.Start();
        Thread.Sleep(20);
        run.Vcpu.RequestStop();
        Assert.True(run.Vcpu.Completion.Wait(Bound));
        Assert.Equal(VcpuRunOutcome.Cancelled, run.Vcpu.Completion.Result.Outcome);
    }

    [Fact]
    public void ADeadlineEndsAGuestThatNeverStops()
    {
        using var run = GuestRun.Create(GuestMode.User64, AsmExtensions.CountForever);
        VcpuRunResult result = run.Run(TimeSpan.FromMilliseconds(200));
        Assert.Equal(VcpuRunOutcome.Failed, result.Outcome);
        Assert.Contains("deadline", result.Reason, StringComparison.Ordinal);
        Assert.Matches(@"vCPU 0 at RIP 0x800[03] \(64-bit, CPL 3\): (inc rax|jmp)", result.Reason); // where it spun
    }

    [Fact]
    public void ADeadlineGetsAVcpuOutOfAGuestThatLivelocksInsideKvmRun()
    {
        // On PVM a CPL0 vmcall never leaves KVM_RUN (KVM re-executes it); on VMX/SVM it returns and the guest spins.
        // Either way only the kick signal ends the run, and it must.
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            var spin = a.CreateLabel();
            a.vmcall();
            a.Label(ref spin);
            a.jmp(spin);
        });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        VcpuRunResult result = run.Run(TimeSpan.FromMilliseconds(500));
        Assert.Equal(VcpuRunOutcome.Failed, result.Outcome);
        Assert.Contains("deadline", result.Reason, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"stopping took {clock.Elapsed}");
        Assert.True(run.Vcpu.Completion.IsCompleted);
    }
}
