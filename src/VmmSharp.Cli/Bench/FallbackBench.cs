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
/// handler that returns with <c>iretq</c>) and <c>cmpxchg16b</c>, each in a CPL0 loop through the dispatcher. Each is
/// measured against a baseline loop of the same shape whose exiting instruction is an <c>out</c> to a port nobody
/// handles, in alternating rounds of the same run: the difference is the fallback's cost per emulated instruction
/// (KVM's failed emulation and its exit, the handler, the event delivery), the guest's own loop left out.
/// </summary>
internal static class FallbackBench
{
    private const ulong Target = TinyGuestLayout.Data;

    // The baseline of int3 returns with iretq through frames laid out here by the VMM, one per iteration.
    private const ulong Frames = 0x100000;
    private const int FrameSize = 40;

    private enum Kind
    {
        Int3,
        Int3Baseline,
        Cmpxchg16b,
        Cmpxchg16bBaseline,
    }

    private readonly record struct Round(double Total, double Handler, double Allocated);

    public static int Run(int instructions, int rounds)
    {
        Kind[] kinds = Enum.GetValues<Kind>();
        foreach (Kind kind in kinds)
        {
            Measure(kind, Math.Min(instructions, 200)); // JIT and first-touch costs out of the figures
        }
        var measured = kinds.ToDictionary(k => k, _ => new List<Round>());
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < kinds.Length; i++)
            {
                Kind kind = kinds[(i + round) % kinds.Length];
                measured[kind].Add(Measure(kind, instructions));
            }
        }
        Console.WriteLine($"{instructions} emulated instructions per round, median of {rounds} alternating rounds, CPL0 guest, host: {KvmSystem.Virtualization.Kind}");
        Console.WriteLine("  per instruction: total loop iteration; the baseline loop (the same loop, an exit on out 0x80 in its place); net = total - baseline");
        double int3 = Report("int3", "out; iretq; jmp", measured[Kind.Int3], measured[Kind.Int3Baseline]);
        double cas = Report("cmpxchg16b", "out; jmp", measured[Kind.Cmpxchg16b], measured[Kind.Cmpxchg16bBaseline]);
        Console.WriteLine($"fallback: int3 {int3:0.0} us, cmpxchg16b {cas:0.0} us per emulated instruction (net of the baseline loop)");
        return 0;
    }

    /// <summary>Prints one instruction's line and returns its net cost.</summary>
    private static double Report(string name, string baselineLoop, List<Round> rounds, List<Round> baseline)
    {
        double total = Statistics.Median(rounds.Select(r => r.Total)), bare = Statistics.Median(baseline.Select(r => r.Total));
        double net = total - bare;
        Console.WriteLine($"  {name,-10}  total {total,6:0.0} us   baseline {bare,6:0.0} us ({baselineLoop,-15})   net {net,6:0.0} us   " +
            $"in the handler {Statistics.Median(rounds.Select(r => r.Handler)),4:0.0} us   " +
            $"allocated {Statistics.Median(rounds.Select(r => r.Allocated)):0} B");
        return net;
    }

    /// <summary>Microseconds per loop iteration and per handler call, and bytes allocated per iteration on the vCPU thread, for one round.</summary>
    private static Round Measure(Kind kind, int instructions)
    {
        TinyGuest guest = TinyGuest.Assemble(GuestMode.Long64, a =>
        {
            Label loop = a.CreateLabel(), handler = a.CreateLabel();
            a.mov(rsi, Target);
            a.Label(ref loop);
            switch (kind)
            {
                case Kind.Int3:
                    a.int3();
                    break;
                case Kind.Int3Baseline:
                    a.@out(0x80, al);
                    a.iretq(); // to the jmp below, through the next prepared frame
                    break;
                case Kind.Cmpxchg16b:
                    a.cmpxchg16b(__xmmword_ptr[rsi]);
                    break;
                default:
                    a.@out(0x80, al);
                    break;
            }
            a.jmp(loop);
            a.Label(ref handler);
            a.iretq();
        });
        ulong frames = (ulong)instructions + 2;
        ulong ram = Math.Max(2UL << 20, (Frames + (frames * FrameSize) + 0x1f_ffff) & ~0x1f_ffffUL);
        using var vm = VirtualMachine.Create(GuestMemory.WithRam(ram));
        guest.Load(vm.Memory);
        InstallBreakpointGate(vm.Memory, guest);
        if (kind == Kind.Int3Baseline)
        {
            WriteFrames(vm.Memory, guest, frames);
        }
        VcpuDispatcher d = vm.AddVcpu();
        var fallback = new EmulationFallback(new GuestPhysicalSpace(vm.Memory));
        VcpuHandler emulate = fallback.CreateHandler();
        long start = 0, end = 0, count = 0, handlerTicks = 0, allocatedAtStart = 0, allocated = 0;
        void Count(VcpuState s)
        {
            if (++count == 1)
            {
                allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
                start = Stopwatch.GetTimestamp();
            }
            else if (count == instructions + 1)
            {
                end = Stopwatch.GetTimestamp();
                allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedAtStart;
                s.Stop(0, "done");
            }
        }
        d.Register(VcpuEvent.Startup, TinyGuest.StartupMtd, s => guest.SetStartupState(s, kind == Kind.Int3Baseline ? Frames : TinyGuestLayout.StackTop));
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
            throw new VmmException($"benchmark guest ({kind}) failed: {result.Reason}");
        }
        double total = Stopwatch.GetElapsedTime(start, end).TotalMicroseconds / instructions;
        double handler = TimeSpan.FromSeconds((double)handlerTicks / Stopwatch.Frequency).TotalMicroseconds / (instructions + 1);
        return new Round(total, handler, (double)allocated / instructions);
    }

    /// <summary>Points the #BP gate at the <c>iretq</c> at the end of the guest's code.</summary>
    private static void InstallBreakpointGate(GuestMemory memory, TinyGuest guest)
    {
        ulong handler = TinyGuest.Entry + (ulong)guest.Code.Length - 2; // iretq is 48 cf
        ulong gate = TinyGuestLayout.Idt + (3 * 16);
        memory.Write(gate, (handler & 0xffff) | ((ulong)TinyGuestLayout.KernelCode64 << 16) | (0x8eUL << 40) | ((handler >> 16 & 0xffff) << 48));
        memory.Write(gate + 8, handler >> 32);
    }

    /// <summary>
    /// The iretq frames the baseline of <c>int3</c> returns through, as the #BP delivery would have pushed them: each
    /// returns to the <c>jmp</c> after the loop's <c>iretq</c>, with RSP at the next frame.
    /// </summary>
    private static void WriteFrames(GuestMemory memory, TinyGuest guest, ulong count)
    {
        // The loop's iretq is followed by the jmp back; find it by decoding (mov rsi's encoding length is Iced's choice).
        var decoder = Iced.Intel.Decoder.Create(64, guest.Code, TinyGuest.Entry);
        ulong back = 0;
        while (decoder.IP < TinyGuest.Entry + (ulong)guest.Code.Length && back == 0)
        {
            if (decoder.Decode().Mnemonic == Mnemonic.Iretq)
            {
                back = decoder.IP;
            }
        }
        for (ulong i = 0; i < count; i++)
        {
            ulong frame = Frames + (i * FrameSize);
            memory.Write(frame, back);
            memory.Write(frame + 8, (ulong)TinyGuestLayout.KernelCode64);
            memory.Write(frame + 16, 0x2UL);
            memory.Write(frame + 24, frame + FrameSize);
            memory.Write(frame + 32, (ulong)TinyGuestLayout.KernelData);
        }
    }
}
