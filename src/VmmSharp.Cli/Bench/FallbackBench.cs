using System.Diagnostics;
using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Emulation;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Memory;
using VmmSharp.Vm;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// <c>vmm bench fallback</c>: what an instruction the emulation fallback finishes costs, for <c>int3</c> (delivered to a
/// handler that returns with <c>iretq</c>) and <c>cmpxchg16b</c>, each in a CPL0 loop through the dispatcher. It reports
/// the time per emulated instruction in all (the guest's loop included), that time net of a bare CPL0 port-I/O exit
/// loop, and the time spent in the fallback's handler alone.
/// </summary>
internal static class FallbackBench
{
    private const ulong Target = TinyGuestLayout.Data;

    private enum Kind
    {
        BareExit,
        Int3,
        Cmpxchg16b,
    }

    public static int Run(int instructions, int rounds)
    {
        Kind[] kinds = Enum.GetValues<Kind>();
        var total = kinds.ToDictionary(k => k, _ => new List<double>());
        var inHandler = kinds.ToDictionary(k => k, _ => new List<double>());
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < kinds.Length; i++)
            {
                Kind kind = kinds[(i + round) % kinds.Length];
                (double all, double handler) = Measure(kind, instructions);
                total[kind].Add(all);
                inHandler[kind].Add(handler);
            }
        }
        double bare = Statistics.Median(total[Kind.BareExit]);
        double int3 = Statistics.Median(total[Kind.Int3]), cas = Statistics.Median(total[Kind.Cmpxchg16b]);
        Console.WriteLine($"{instructions} emulated instructions per round, median of {rounds} rounds, CPL0 guest, host: {KvmSystem.Virtualization.Kind}");
        Console.WriteLine($"  bare CPL0 port-I/O exit loop (out; jmp)        {bare,8:0.0} us per exit");
        Console.WriteLine($"  int3 + iretq loop, total                       {int3,8:0.0} us   net of a bare exit {int3 - bare,6:0.0} us   in the handler {Statistics.Median(inHandler[Kind.Int3]),5:0.0} us");
        Console.WriteLine($"  cmpxchg16b loop, total                         {cas,8:0.0} us   net of a bare exit {cas - bare,6:0.0} us   in the handler {Statistics.Median(inHandler[Kind.Cmpxchg16b]),5:0.0} us");
        Console.WriteLine($"fallback: int3 {int3:0.0} us, cmpxchg16b {cas:0.0} us per emulated instruction (total, guest loop included)");
        return 0;
    }

    /// <summary>Microseconds per loop iteration, and per handler call, for one round.</summary>
    private static (double Total, double Handler) Measure(Kind kind, int instructions)
    {
        TinyGuest guest = TinyGuest.Assemble(GuestMode.Long64, a =>
        {
            Label loop = a.CreateLabel(), handler = a.CreateLabel();
            a.mov(rsi, Target);
            a.Label(ref loop);
            switch (kind)
            {
                case Kind.BareExit: a.@out(0x80, al); break;
                case Kind.Int3: a.int3(); break;
                default: a.cmpxchg16b(__xmmword_ptr[rsi]); break;
            }
            a.jmp(loop);
            a.Label(ref handler);
            a.iretq();
        });
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20));
        guest.Load(vm.Memory);
        InstallBreakpointGate(vm.Memory, guest);
        VcpuDispatcher d = vm.AddVcpu();
        var fallback = new EmulationFallback(new GuestPhysicalSpace(vm.Memory));
        VcpuHandler emulate = fallback.CreateHandler();
        long start = 0, end = 0, count = 0, handlerTicks = 0;
        void Count(VcpuState s)
        {
            if (++count == 1)
            {
                start = Stopwatch.GetTimestamp();
            }
            else if (count == instructions + 1)
            {
                end = Stopwatch.GetTimestamp();
                s.Stop(0, "done");
            }
        }
        d.Register(VcpuEvent.Startup, TinyGuest.StartupMtd, s => guest.SetStartupState(s));
        d.Register(VcpuEvent.Io, Mtd.Qual, Count);
        d.Register(VcpuEvent.InternalError, EmulationFallback.RequiredMtd, s =>
        {
            long t = Stopwatch.GetTimestamp();
            emulate(s);
            handlerTicks += Stopwatch.GetTimestamp() - t;
            Count(s);
        });
        VcpuRunResult result = d.Run();
        if (result.Outcome != VcpuRunOutcome.Stopped)
        {
            throw new VmmException($"benchmark guest failed: {result.Reason}");
        }
        double total = Stopwatch.GetElapsedTime(start, end).TotalMicroseconds / instructions;
        double handler = kind == Kind.BareExit ? 0 : TimeSpan.FromSeconds((double)handlerTicks / Stopwatch.Frequency).TotalMicroseconds / (instructions + 1);
        return (total, handler);
    }

    /// <summary>Points the #BP gate at the <c>iretq</c> at the end of the guest's code.</summary>
    private static void InstallBreakpointGate(GuestMemory memory, TinyGuest guest)
    {
        ulong handler = TinyGuest.Entry + (ulong)guest.Code.Length - 2; // iretq is 48 cf
        ulong gate = TinyGuestLayout.Idt + (3 * 16);
        memory.Write(gate, (handler & 0xffff) | ((ulong)TinyGuestLayout.KernelCode64 << 16) | (0x8eUL << 40) | ((handler >> 16 & 0xffff) << 48));
        memory.Write(gate + 8, handler >> 32);
    }
}
