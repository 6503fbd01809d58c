using System.Diagnostics;
using DebugExitDevice = VmmSharp.Devices.Legacy.DebugExit;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Machine;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// <c>vmm bench snapshot</c>: for 128 MiB / 1 vCPU and 512 MiB / 2 vCPUs, the time to create a snapshot of a paused
/// CPL3 guest, to restore it in a new process, and to reset it in this process after the guest dirtied 1 MiB
/// (<see cref="PcMachine.Restore(MachineSnapshot)"/>). The new-process figure runs from the <c>posix_spawn</c> of
/// <c>vmm snapshot load</c> to this process reading the byte the restored guest writes to COM1 as its first act: exec,
/// runtime start, restore, the vCPU entering the guest, the exit and the console pipe all count.
/// </summary>
internal static class SnapshotBench
{
    private const ulong Flag = 0x300000, Resumed = 0x301000, Dirty = 0x400000;
    private const string Marker = "!";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public static int Run(int rounds, string? vmm)
    {
        string[] loader = Loader(vmm);
        Console.WriteLine($"new-process restore: spawn of `{string.Join(' ', loader)} snapshot load` to its guest's first output byte read here");
        string dir = Directory.CreateTempSubdirectory("vmm-bench-snapshot-").FullName;
        try
        {
            string kernel = Path.Combine(dir, "guest");
            File.WriteAllBytes(kernel, Guest());
            var restores = new List<double>();
            var resets = new List<double>();
            var creates = new List<double>();
            foreach ((ulong memory, int cpus) in new[] { (128UL << 20, 1), (512UL << 20, 2) })
            {
                string state = Path.Combine(dir, "state"), mem = Path.Combine(dir, "mem");
                (List<double> createRuns, List<double> resetRuns) = InProcess(kernel, memory, cpus, rounds, state, mem);
                double create = Statistics.Median(createRuns), reset = Statistics.Median(resetRuns);
                var spawns = Enumerable.Range(0, rounds).Select(_ => NewProcess(loader, state, mem)).ToList();
                double restore = Statistics.Median(spawns.Select(s => s.Ms));
                Console.WriteLine($"{memory >> 20} MiB, {cpus} vCPU(s), medians of {rounds} (best): create {create:0.0} ms ({createRuns.Min():0.0}), " +
                    $"restore (new process) {restore:0.00} ms ({spawns.Min(s => s.Ms):0.00}; the process's CPU over its life {Statistics.Median(spawns.Select(s => s.CpuMs)):0.0} ms), " +
                    $"reset after 1 MiB dirtied {reset:0} us ({resetRuns.Min():0})");
                creates.Add(create);
                restores.Add(restore);
                resets.Add(reset);
            }
            Console.WriteLine($"snapshot: restore {restores[0]:0.0} ms (new process), reset {resets[0]:0} us (in process), create {creates[0]:0.0} ms");
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// CPL3: port 0x80 once ("ready"), wait until the host sets the flag page, dirty 256 pages (1 MiB), port 0x80 again
    /// ("dirtied"), then wait until the host sets the resumed flag (it does so in the snapshot new processes restore),
    /// write the marker to COM1 and end the run through the debug-exit port.
    /// </summary>
    private static byte[] Guest() => TinyKernel.UserMode(a =>
    {
        Iced.Intel.Label wait = a.CreateLabel(), dirty = a.CreateLabel(), resumed = a.CreateLabel(), end = a.CreateLabel();
        a.@out(0x80, al);
        a.mov(rbx, Flag);
        a.Label(ref wait);
        a.cmp(__byte_ptr[rbx], 0);
        a.je(wait);
        a.mov(rbx, Dirty);
        a.mov(rcx, 256);
        a.Label(ref dirty);
        a.mov(__qword_ptr[rbx], rcx);
        a.add(rbx, 4096);
        a.dec(rcx);
        a.jnz(dirty);
        a.@out(0x80, al);
        a.mov(rbx, Resumed);
        a.Label(ref resumed);
        a.cmp(__byte_ptr[rbx], 0);
        a.je(resumed);
        a.mov(dx, PcMachine.Com1Port);
        a.mov(al, (byte)Marker[0]);
        a.@out(dx, al);
        a.mov(dx, DebugExitDevice.DefaultPort);
        a.mov(al, 0);
        a.@out(dx, al);
        a.Label(ref end);
        a.jmp(end);
    });

    private static (List<double> CreateMs, List<double> ResetUs) InProcess(string kernel, ulong memory, int cpus, int rounds, string state, string mem)
    {
        using var machine = new PcMachine(new MachineOptions(kernel) { MemorySize = memory, CpuCount = cpus });
        VcpuDispatcher bsp = machine.Vm.Vcpus[0];
        Task<MachineResult> run = Task.Factory.StartNew(machine.Run, TaskCreationOptions.LongRunning);
        Wait(() => bsp.ExitCount(VcpuEvent.Io) >= 1, run, "the guest's first port write");
        machine.Pause();
        var creates = new List<double>();
        for (int i = 0; i < rounds; i++)
        {
            var clock = Stopwatch.StartNew();
            machine.CreateSnapshot(state, mem);
            creates.Add(clock.Elapsed.TotalMilliseconds);
        }
        var snapshot = MachineSnapshot.Load(state, mem);
        machine.Restore(snapshot); // the memory is the file's from now on; each reset discards what was written since
        var resets = new List<double>();
        for (int i = 0; i < rounds + 1; i++)
        {
            DirtyAndPause(machine, bsp, run);
            var clock = Stopwatch.StartNew();
            machine.Restore(snapshot);
            if (i > 0)
            {
                resets.Add(clock.Elapsed.TotalMicroseconds); // the first includes the one-time parse of the snapshot's state
            }
            if (machine.Vm.Memory.Read<ulong>(Dirty) != 0 || machine.Vm.Memory.Read<byte>(Flag) != 0)
            {
                throw new VmmException("the reset left the guest's dirtied memory in place");
            }
        }
        // The snapshot the new processes restore: the guest waits for the resumed flag, set in the snapshot's memory.
        DirtyAndPause(machine, bsp, run);
        machine.Vm.Memory.Write(Resumed, (byte)1);
        machine.CreateSnapshot(state, mem);
        machine.RequestStop(0, "benchmark done");
        run.Wait(Bound);
        return (creates, resets);
    }

    /// <summary>Lets the paused guest dirty its 1 MiB and pauses it again once it reports it did.</summary>
    private static void DirtyAndPause(PcMachine machine, VcpuDispatcher bsp, Task<MachineResult> run)
    {
        machine.Vm.Memory.Write(Flag, (byte)1);
        long before = bsp.ExitCount(VcpuEvent.Io);
        machine.Resume();
        Wait(() => bsp.ExitCount(VcpuEvent.Io) > before, run, "the guest dirtying 1 MiB");
        machine.Pause();
    }

    /// <summary>The command that runs <c>vmm</c>: <paramref name="vmm"/>, else this process's own binary (or dotnet and its vmm.dll).</summary>
    private static string[] Loader(string? vmm)
    {
        if (vmm is not null)
        {
            return File.Exists(vmm) ? [Path.GetFullPath(vmm)] : throw new VmmException($"--vmm '{vmm}' does not exist");
        }
        string self = Environment.ProcessPath ?? throw new VmmException("cannot tell where the vmm binary is; pass --vmm");
        return Path.GetFileNameWithoutExtension(self) == "dotnet" ? [self, Environment.GetCommandLineArgs()[0]] : [self];
    }

    /// <summary>
    /// Runs <c>vmm snapshot load</c> in a new process; returns ms from its spawn to its guest's marker on its stdout, and
    /// the CPU time the process used in all (to its exit: a figure the host's load does not inflate as much).
    /// </summary>
    private static (double Ms, double CpuMs) NewProcess(string[] loader, string state, string mem)
    {
        ChildProcess.Result r = ChildProcess.Run([.. loader, "snapshot", "load", "--snapshot", state, "--mem", mem, "--timeout", "10"], Marker, TimeSpan.FromSeconds(30));
        if (r.MarkerAfter is not { } after)
        {
            throw new VmmException($"vmm snapshot load: the restored guest wrote no marker (exit status {r.ExitStatus}): {r.Output.Trim()}");
        }
        return (after.TotalMilliseconds, r.CpuTime.TotalMilliseconds);
    }

    private static void Wait(Func<bool> condition, Task<MachineResult> run, string what)
    {
        if (!SpinWait.SpinUntil(() => condition() || run.IsCompleted, Bound) || run.IsCompleted)
        {
            throw new VmmException($"benchmark guest: no sign of {what} within {Bound.TotalSeconds:0} s{(run.IsCompleted ? $" ({run.Result.Reason})" : "")}");
        }
    }
}
