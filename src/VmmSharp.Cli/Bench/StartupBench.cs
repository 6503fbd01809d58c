using System.Diagnostics;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// <c>vmm bench startup</c>: time from process start to a marker the guest prints, and peak RSS, of
/// <c>vmm</c> and (with <c>--qemu</c>) QEMU's microvm, alternating, on the same tiny PVH guest that prints
/// the marker and exits through isa-debug-exit; and time from process start to process end (reaped by
/// <c>wait4</c>), which includes tearing the VM down.
/// </summary>
internal static class StartupBench
{
    private const string Marker = "VMM-MARKER";

    public static int Run(string? guest, string? vmm, bool qemu, int runs)
    {
        guest ??= BuildMarkerGuest();
        vmm ??= Environment.ProcessPath ?? throw new VmmException("cannot tell where the vmm binary is; pass --vmm");
        if (!File.Exists(guest))
        {
            throw new VmmException($"marker guest '{guest}' not found");
        }
        string[] vmmArgs = [vmm, "run", "--kernel", guest, "--mem", "128M"];
        string[] qemuArgs = ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host,-arch-capabilities",
            "-m", "128", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot", "-kernel", guest];
        if (qemu && !OnPath("qemu-system-x86_64"))
        {
            throw new VmmException("qemu-system-x86_64 is not on PATH: apt-get install qemu-system-x86");
        }
        var vmmRuns = new List<ChildProcess.Result>();
        var qemuRuns = new List<ChildProcess.Result>();
        Console.WriteLine($"{runs} runs each, alternating; guest {guest}; vmm {vmm}");
        for (int i = 0; i < runs; i++)
        {
            vmmRuns.Add(Once(vmmArgs, "vmm"));
            if (qemu)
            {
                qemuRuns.Add(Once(qemuArgs, "qemu"));
            }
        }
        (double vmmMs, double vmmExitMs, double vmmMiB) = Medians(vmmRuns);
        if (!qemu)
        {
            Console.WriteLine($"startup: vmm {vmmMs:0.0} ms; rss: vmm {vmmMiB:0.0} MiB");
            Console.WriteLine($"exit: vmm {vmmExitMs:0.0} ms");
            return 0;
        }
        (double qemuMs, double qemuExitMs, double qemuMiB) = Medians(qemuRuns);
        Console.WriteLine($"startup: vmm {vmmMs:0.0} ms, qemu {qemuMs:0.0} ms, ratio {vmmMs / qemuMs:0.00}; " +
            $"rss: vmm {vmmMiB:0.0} MiB, qemu {qemuMiB:0.0} MiB, ratio {vmmMiB / qemuMiB:0.00}");
        Console.WriteLine($"exit: vmm {vmmExitMs:0.0} ms, qemu {qemuExitMs:0.0} ms, ratio {vmmExitMs / qemuExitMs:0.00}");
        return 0;
    }

    private static ChildProcess.Result Once(string[] argv, string name)
    {
        ChildProcess.Result r = ChildProcess.Run(argv, Marker, TimeSpan.FromSeconds(30));
        if (r.MarkerAfter is null)
        {
            throw new VmmException($"{name} did not print {Marker} (exit status {r.ExitStatus}); it printed: {r.Output.Trim()}");
        }
        Console.WriteLine($"  {name,-4} marker {r.MarkerAfter.Value.TotalMilliseconds,7:0.0} ms  exit {r.ExitedAfter.TotalMilliseconds,7:0.0} ms  " +
            $"{r.PeakRssKiB / 1024.0,6:0.0} MiB  status {r.ExitStatus}");
        return r;
    }

    private static (double Ms, double ExitMs, double MiB) Medians(List<ChildProcess.Result> runs)
        => (Statistics.Median(runs.Select(r => r.MarkerAfter!.Value.TotalMilliseconds)),
            Statistics.Median(runs.Select(r => r.ExitedAfter.TotalMilliseconds)),
            Statistics.Median(runs.Select(r => r.PeakRssKiB / 1024.0)));

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, program)));

    /// <summary>Builds tests/guests/marker with make, when run from a checkout.</summary>
    internal static string BuildMarkerGuest()
    {
        string? dir = Directory.GetCurrentDirectory();
        while (dir is not null && !File.Exists(Path.Combine(dir, "tests", "guests", "Makefile")))
        {
            dir = Path.GetDirectoryName(dir);
        }
        if (dir is null)
        {
            throw new VmmException("no marker guest: run from the VmmSharp checkout (it builds tests/guests/marker) or pass --guest FILE");
        }
        string output = Path.Combine(Path.GetTempPath(), "vmmsharp-bench-guests");
        using var make = Process.Start(new ProcessStartInfo("make", ["-s", "-C", Path.Combine(dir, "tests", "guests"), $"OUT={output}"])
        {
            RedirectStandardOutput = true,
        }) ?? throw new VmmException("cannot run make");
        make.WaitForExit();
        if (make.ExitCode != 0)
        {
            throw new VmmException($"building the marker guest failed (make exit status {make.ExitCode}); it needs gcc, make and binutils");
        }
        return Path.Combine(output, "marker.elf");
    }
}
