using System.Diagnostics;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Memory;
using VmmSharp.Vm;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// <c>vmm bench recall</c>: the time from <see cref="VcpuDispatcher.Recall"/> on one thread to the Recall
/// handler running on the vCPU's thread, for a guest spinning at CPL3 (so the kick must interrupt KVM_RUN).
/// </summary>
internal static class RecallBench
{
    public static int Run(int recalls)
    {
        TinyGuest guest = TinyGuest.Assemble(GuestMode.User64, a =>
        {
            var spin = a.CreateLabel();
            a.Label(ref spin);
            a.inc(rax);
            a.jmp(spin);
        });
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20));
        guest.Load(vm.Memory);
        VcpuDispatcher vcpu = vm.AddVcpu();
        long handled = 0, arrival = 0;
        vcpu.Register(VcpuEvent.Startup, TinyGuest.StartupMtd, s => guest.SetStartupState(s));
        vcpu.Register(VcpuEvent.Recall, Mtd.None, _ =>
        {
            Volatile.Write(ref arrival, Stopwatch.GetTimestamp());
            Interlocked.Increment(ref handled);
        });
        vcpu.Start();
        Thread.Sleep(50); // into the guest
        double[] micros = new double[recalls];
        var random = new Random(1);
        for (int i = 0; i < recalls; i++)
        {
            Thread.Sleep(random.Next(0, 2)); // let it get back into the guest
            long before = Interlocked.Read(ref handled);
            long start = Stopwatch.GetTimestamp();
            vcpu.Recall();
            var wait = Stopwatch.StartNew();
            while (Interlocked.Read(ref handled) == before)
            {
                if (wait.Elapsed > TimeSpan.FromSeconds(5))
                {
                    throw new VmmException($"recall {i} was not delivered within 5 s");
                }
                Thread.SpinWait(20);
            }
            micros[i] = Stopwatch.GetElapsedTime(start, Volatile.Read(ref arrival)).TotalMicroseconds;
        }
        vcpu.RequestStop();
        vcpu.Completion.Wait(TimeSpan.FromSeconds(5));
        Array.Sort(micros);
        Console.WriteLine($"{recalls} recalls of a vCPU spinning at CPL3, host: {Kvm.KvmSystem.Virtualization.Kind}");
        Console.WriteLine($"recall latency: median {Statistics.Median(micros):0.0} us, p90 {Statistics.Percentile(micros, 0.9):0.0} us, " +
            $"p99 {Statistics.Percentile(micros, 0.99):0.0} us, max {micros[^1]:0.0} us");
        return 0;
    }
}
