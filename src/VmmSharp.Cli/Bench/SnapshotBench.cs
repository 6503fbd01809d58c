using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Machine;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// <c>vmm bench snapshot</c>: for 128 MiB / 1 vCPU and 512 MiB / 2 vCPUs, the time to create a snapshot of a paused
/// CPL3 guest, to restore it in a new process (from the load request to the guest's first exit after it ran on), and to
/// reset it in this process after the guest dirtied 1 MiB (<see cref="PcMachine.Restore(MachineSnapshot)"/>).
/// </summary>
internal static partial class SnapshotBench
{
    private const ulong Flag = 0x300000, Dirty = 0x400000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public static int Run(int rounds)
    {
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
                (double create, double reset) = InProcess(kernel, memory, cpus, rounds, Path.Combine(dir, "state"), Path.Combine(dir, "mem"));
                double restore = Statistics.Median(Enumerable.Range(0, rounds).Select(_ => NewProcess(Path.Combine(dir, "state"), Path.Combine(dir, "mem"))));
                Console.WriteLine($"{memory >> 20} MiB, {cpus} vCPU(s): create {create:0.0} ms, restore (new process) {restore:0.00} ms, reset after 1 MiB dirtied {reset:0} us (medians of {rounds})");
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
    /// ("dirtied"), then exit through port 0x80 in a loop (so a restored guest shows at once that it runs).
    /// </summary>
    private static byte[] Guest() => TinyKernel.UserMode(a =>
    {
        Iced.Intel.Label wait = a.CreateLabel(), dirty = a.CreateLabel(), exits = a.CreateLabel();
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
        a.Label(ref exits);
        a.@out(0x80, al);
        a.jmp(exits);
    });

    private static (double CreateMs, double ResetUs) InProcess(string kernel, ulong memory, int cpus, int rounds, string state, string mem)
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
            machine.Vm.Memory.Write(Flag, (byte)1);
            long before = bsp.ExitCount(VcpuEvent.Io);
            machine.Resume();
            Wait(() => bsp.ExitCount(VcpuEvent.Io) > before, run, "the guest dirtying 1 MiB");
            machine.Pause();
            var clock = Stopwatch.StartNew();
            machine.Restore(snapshot);
            if (i > 0)
            {
                resets.Add(clock.Elapsed.TotalMicroseconds); // the first includes the one-time parse of the snapshot's state
            }
            if (machine.Vm.Memory.Read<ulong>(Dirty) != 0)
            {
                throw new VmmException("the reset left the guest's dirtied memory in place");
            }
        }
        // The snapshot the new processes restore: taken with the flag set, so the restored guest runs on at once.
        machine.Vm.Memory.Write(Flag, (byte)1);
        machine.CreateSnapshot(state, mem);
        machine.RequestStop(0, "benchmark done");
        run.Wait(Bound);
        return (Statistics.Median(creates), Statistics.Median(resets));
    }

    /// <summary>Runs <c>vmm snapshot load</c> in a new process and returns the time it reports from the load request to the guest's first exit.</summary>
    private static double NewProcess(string state, string mem)
    {
        string[] self = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet"
            ? [p, Environment.GetCommandLineArgs()[0]]
            : [Environment.ProcessPath ?? throw new VmmException("cannot tell where the vmm binary is")];
        var start = new ProcessStartInfo(self[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in self.Skip(1).Concat(["snapshot", "load", "--snapshot", state, "--mem", mem, "--stats", "--timeout", "0.3"]))
        {
            start.ArgumentList.Add(a);
        }
        using Process child = Process.Start(start)!;
        string stderr = child.StandardError.ReadToEnd();
        child.WaitForExit();
        Match m = FirstExit().Match(stderr);
        if (!m.Success)
        {
            throw new VmmException($"vmm snapshot load did not report its first guest exit: {stderr.Trim()}");
        }
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static void Wait(Func<bool> condition, Task<MachineResult> run, string what)
    {
        if (!SpinWait.SpinUntil(() => condition() || run.IsCompleted, Bound) || run.IsCompleted)
        {
            throw new VmmException($"benchmark guest: no sign of {what} within {Bound.TotalSeconds:0} s{(run.IsCompleted ? $" ({run.Result.Reason})" : "")}");
        }
    }

    [GeneratedRegex(@"first guest exit after ([0-9.]+) ms")]
    private static partial Regex FirstExit();
}
