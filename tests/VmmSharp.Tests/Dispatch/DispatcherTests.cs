using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

/// <summary>Threads, registration and the error for an event without a handler.</summary>
public class DispatcherTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static void Count(Iced.Intel.Assembler a, int exits)
    {
        var loop = a.CreateLabel();
        a.xor(ecx, ecx);
        a.Label(ref loop);
        a.@out(0x80, al);
        a.inc(ecx);
        a.cmp(ecx, exits);
        a.jb(loop);
        a.ExitWith(0);
    }

    [Fact]
    public void StartRunsTheDispatcherOnAThreadOfItsOwnWithTheGivenStack()
    {
        int thread = 0;
        using var run = GuestRun.Create(GuestMode.User64, a => Count(a, 10));
        run.HandleConsoleAndExit();
        Assert.True(run.Vcpu.Register(VcpuEvent.Recall, Mtd.None, _ => { }));
        using var probe = GuestRun.Create(GuestMode.User64, a => a.ExitWith(0));
        Assert.True(probe.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, s =>
        {
            thread = Environment.CurrentManagedThreadId;
            // Deep recursion needs more than the default 256 KiB; the stack given here has room for it.
            Assert.Equal(100_000, Recurse(100_000));
            s.Stop(0, "done");
        }));

        Task<VcpuRunResult> done = probe.Vcpu.Start(stackSize: 64 << 20);

        Assert.True(done.Wait(Bound));
        done.Result.AssertStopped();
        Assert.NotEqual(Environment.CurrentManagedThreadId, thread);
    }

    private static int Recurse(int n) => n == 0 ? 0 : 1 + Recurse(n - 1);

    [Fact]
    public void TheExitPathAllocatesNothing()
    {
        long first = 0, last = 0, count = 0;
        using var run = GuestRun.Create(GuestMode.User64, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.@out(0x80, al);
            a.jmp(loop);
        });
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual | Mtd.Acdb | Mtd.Rip, s =>
        {
            s.Rax = s.Rax + s.Io.Value + s.Rip; // read and write state through the MTD
            count++;
            if (count == 100)
            {
                first = GC.GetAllocatedBytesForCurrentThread();
            }
            else if (count == 5100)
            {
                last = GC.GetAllocatedBytesForCurrentThread();
                s.Stop(0, "done");
            }
        }));

        run.Run().AssertStopped();

        Assert.Equal(0, last - first);
    }

    [Fact]
    public void RunUsesTheThreadTheCallerBrings()
    {
        int handlerThread = 0, callerThread = 0;
        VcpuRunResult? result = null;
        using var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(3));
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, s =>
        {
            handlerThread = Environment.CurrentManagedThreadId;
            s.Stop((int)s.Io.Value, "exit");
        }));
        var thread = new Thread(() =>
        {
            callerThread = Environment.CurrentManagedThreadId;
            result = run.Vcpu.Run();
        }, 1 << 20);
        thread.Start();
        Assert.True(thread.Join(Bound));

        Assert.Equal(3, result!.AssertStopped().Status);
        Assert.Equal(callerThread, handlerThread);
        Assert.True(run.Vcpu.Completion.IsCompleted);
    }

    [Fact]
    public void TwoVcpusRunInParallelOnTheirOwnDispatchers()
    {
        const int exits = 2000;
        var threads = new int[2];
        var counts = new int[2];
        using var started = new Barrier(2);
        using var run = GuestRun.Create(GuestMode.User64, a => Count(a, exits), vcpus: 2);
        foreach (VcpuDispatcher d in run.Vm.Vcpus)
        {
            int id = d.Id.Value;
            Assert.True(d.Register(VcpuEvent.Io, Mtd.Qual, s =>
            {
                if (s.Io.Port == 0xf4)
                {
                    s.Stop(0, "done");
                    return;
                }
                if (counts[id]++ == 0)
                {
                    threads[id] = Environment.CurrentManagedThreadId;
                    // Both vCPUs must be inside their loops at the same time to get past here.
                    Assert.True(started.SignalAndWait(Bound));
                }
            }));
        }

        Task<VcpuRunResult>[] runs = [.. run.Vm.Vcpus.Select(d => d.Start())];

        Assert.True(Task.WaitAll(runs, Bound));
        foreach (Task<VcpuRunResult> r in runs)
        {
            r.Result.AssertStopped();
        }
        Assert.Equal([exits, exits], counts);
        Assert.NotEqual(threads[0], threads[1]);
    }

    [Fact]
    public void AnEventWithoutAHandlerStopsTheVcpuNamingTheEventRipAndInstruction()
    {
        using var run = GuestRun.Create(GuestMode.Protected32, a =>
        {
            a.nop();
            a.mov(dx, 0x1234);
            a.@out(dx, eax);
            a.hlt();
        });

        VcpuRunResult result = run.Run();

        // RIP is at the OUT on VMX/SVM and past it on PVM (see IoCompletionTests); the report names the OUT either way.
        Assert.Equal(VcpuRunOutcome.Failed, result.Outcome);
        string atOut = $"vCPU 0: unhandled Io event (port 0x1234, 4-byte write) at RIP 0x{TinyGuest.Entry + 5:x} (32-bit, CPL 0): out dx,eax [ef]";
        string pastOut = $"vCPU 0: unhandled Io event (port 0x1234, 4-byte write) at RIP 0x{TinyGuest.Entry + 6:x} (32-bit, CPL 0), " +
            $"just after out dx,eax [ef] at 0x{TinyGuest.Entry + 5:x}: hlt [f4]";
        Assert.Contains(result.Reason, new[] { atOut, pastOut });
    }

    [Fact]
    public void AJumpToANonCanonicalAddressIsReportedAsSuch()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a =>
        {
            a.mov(rax, 0x8000_0000_0000_0000UL);
            a.jmp(rax); // #GP with no IDT: triple fault
        });

        VcpuRunResult result = run.Run();

        Assert.Equal(VcpuRunOutcome.Failed, result.Outcome);
        Assert.StartsWith("vCPU 0: unhandled Shutdown event at RIP ", result.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("add [rax],al", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void AHandlerThatThrowsFailsTheRunWithItsMessage()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a => a.ExitWith(0));
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, _ => throw new FormatException("device said no")));
        VcpuRunResult result = run.Run();
        Assert.Equal(VcpuRunOutcome.Failed, result.Outcome);
        Assert.Contains("Io handler threw FormatException: device said no", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void RegistrationIsRefusedForATakenSlotAndAfterStart()
    {
        using var run = GuestRun.Create(GuestMode.Long64, a => a.ExitWith(0));
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, s => s.Stop(0, "done")));
        Assert.False(run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, _ => { }));
        Assert.False(run.Vcpu.Register(VcpuEvent.Startup, Mtd.None, _ => { }));
        run.Vcpu.Start();
        Assert.False(run.Vcpu.Register(VcpuEvent.Mmio, Mtd.Qual, _ => { }));
        Assert.True(run.Vcpu.Completion.Wait(Bound));
    }

    [Fact]
    public void ARegistrationRacingStartEitherTakesPartInTheRunOrIsRefused()
    {
        for (int i = 0; i < 50; i++)
        {
            using var run = GuestRun.Create(GuestMode.User64, a => a.ExitWith(7));
            bool registered = false;
            using var go = new Barrier(2);
            var registrar = new Thread(() =>
            {
                go.SignalAndWait();
                registered = run.Vcpu.Register(VcpuEvent.Io, Mtd.Qual, s => s.Stop((int)s.Io.Value, "exit"));
            });
            registrar.Start();
            go.SignalAndWait();
            Task<VcpuRunResult> done = run.Vcpu.Start();
            Assert.True(registrar.Join(Bound));
            Assert.True(done.Wait(Bound));

            if (registered)
            {
                Assert.Equal(7, done.Result.AssertStopped().Status);
            }
            else
            {
                Assert.Contains("unhandled Io event", done.Result.Reason, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void EventsTheInKernelIrqchipKeepsCannotBeRegistered()
    {
        KvmRequirement.Ensure();
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(1 << 20), irqchip: true);
        VcpuDispatcher d = vm.AddVcpu();
        Assert.False(d.Register(VcpuEvent.Hlt, Mtd.None, _ => { }));
        Assert.False(d.Register(VcpuEvent.IrqWindow, Mtd.Inj, _ => { }));
        Assert.True(d.Register(VcpuEvent.Io, Mtd.Qual, _ => { }));
    }
}
