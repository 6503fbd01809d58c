using System.Diagnostics;

namespace VmmSharp.Cli.Bench;

/// <summary>Where the benchmarks get their guests (tests/guests, built with make) and the QEMU they compare with.</summary>
internal static class BenchGuests
{
    /// <summary>QEMU's binary.</summary>
    public const string Qemu = "qemu-system-x86_64";

    /// <summary>
    /// QEMU's microvm as the benchmarks run it: KVM (with the CPU flag this PVM host needs), no default devices,
    /// COM1 on stdio, isa-debug-exit, no ACPI (so QEMU puts the virtio-mmio devices on the kernel command line) and
    /// virtio-mmio version 2 (QEMU's default is the legacy interface).
    /// </summary>
    public static List<string> QemuMicrovm(string kernel, string cmdline, int memMiB) =>
    [
        Qemu, "-M", "microvm,acpi=off", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", $"{memMiB}",
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-global", "virtio-mmio.force-legacy=false",
        "-kernel", kernel, "-append", cmdline,
    ];

    /// <summary>Fails with one line unless QEMU is on PATH.</summary>
    public static void RequireQemu()
    {
        if (!OnPath(Qemu))
        {
            throw new VmmException($"{Qemu} is not on PATH: apt-get install qemu-system-x86");
        }
    }

    /// <summary>Whether <paramref name="program"/> is on PATH.</summary>
    public static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, program)));

    /// <summary>This vmm binary (what the benchmark spawns), unless <paramref name="given"/>.</summary>
    public static string Vmm(string? given) =>
        given ?? Environment.ProcessPath ?? throw new VmmException("cannot tell where the vmm binary is; pass --vmm");

    /// <summary>Builds tests/guests with make, when run from a checkout, and returns <paramref name="file"/> from its output.</summary>
    public static string Build(string file)
    {
        string? dir = Directory.GetCurrentDirectory();
        while (dir is not null && !File.Exists(Path.Combine(dir, "tests", "guests", "Makefile")))
        {
            dir = Path.GetDirectoryName(dir);
        }
        if (dir is null)
        {
            throw new VmmException($"no {file}: run from the VmmSharp checkout (it builds tests/guests) or pass --guest FILE");
        }
        string output = Path.Combine(Path.GetTempPath(), "vmmsharp-bench-guests");
        using var make = Process.Start(new ProcessStartInfo("make", ["-s", "-C", Path.Combine(dir, "tests", "guests"), $"OUT={output}"])
        {
            RedirectStandardOutput = true,
        }) ?? throw new VmmException("cannot run make");
        make.WaitForExit();
        if (make.ExitCode != 0)
        {
            throw new VmmException($"building tests/guests failed (make exit status {make.ExitCode}); it needs gcc, make and binutils");
        }
        return Path.Combine(output, file);
    }

    /// <summary>Fails with one line unless <paramref name="guest"/> exists.</summary>
    public static string Existing(string guest) =>
        File.Exists(guest) ? guest : throw new VmmException($"guest '{guest}' not found");
}
