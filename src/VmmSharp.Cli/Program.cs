using System.CommandLine;
using Microsoft.Extensions.Logging;
using VmmSharp;
using VmmSharp.Arch.X86;
using VmmSharp.Machine;
using VmmSharp.Cli.Bench;
using VmmSharp.Cli.Commands;

var root = new RootCommand("vmm: a micro-VMM on Linux KVM, built with VmmSharp");

var info = new Command("info", "Show this host's KVM: API version, hardware virtualization or PVM, capabilities, vCPU limits");
info.SetAction(_ => Guarded(InfoCommand.Run));
root.Subcommands.Add(info);

var timeout = new Option<double>("--timeout") { Description = "Stop the guest after this many seconds (0: never)", DefaultValueFactory = _ => 0 };
var kernel = new Option<string?>("--kernel") { Description = "Kernel to boot: PVH ELF, Multiboot ELF or Linux bzImage (recognised from the file)" };
var initrd = new Option<string?>("--initrd") { Description = "Initial ramdisk (Linux), module (Multiboot, PVH)" };
var cmdline = new Option<string>("--cmdline") { Description = "Kernel command line", DefaultValueFactory = _ => "console=ttyS0" };
var mem = new Option<ulong>("--mem")
{
    Description = "Guest RAM, e.g. 512M or 2G",
    DefaultValueFactory = _ => MachineOptions.DefaultMemorySize,
    CustomParser = r =>
    {
        string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        if (SizeArgument.TryParse(text, out ulong bytes, out string? error))
        {
            return bytes;
        }
        r.AddError(error!);
        return 0;
    },
};
var cpus = new Option<int>("--cpus") { Description = "Number of vCPUs", DefaultValueFactory = _ => 1 };
var cpuidMask = new Option<string[]>("--cpuid-mask")
{
    Description = "Hide CPUID bits: LEAF[.SUBLEAF]:REGISTER:MASK, e.g. 0x7.0:ebx:0x20 (repeatable)",
    AllowMultipleArgumentsPerToken = false,
};
var logLevel = new Option<LogLevel?>("--log-level") { Description = "Log VMM events at this level (Debug shows unhandled ports)" };
var quiet = new Option<bool>("--quiet") { Description = "No summary after a guest that ended by itself" };
var onReset = new Option<ResetAction>("--on-reset") { Description = "What a guest reset (i8042 0xfe) does: exit, or reboot on a fresh machine", DefaultValueFactory = _ => ResetAction.Exit };
var rng = new Option<bool>("--rng") { Description = "Give the guest a virtio-rng entropy device (from the host's getrandom)" };
var disk = new Option<DiskOptions[]>("--disk")
{
    Description = "A virtio-blk disk: PATH[,ro][,serial=ID], a raw image (repeatable; the guest's vda, vdb, ...)",
    AllowMultipleArgumentsPerToken = false,
    CustomParser = r =>
    {
        var disks = new List<DiskOptions>();
        foreach (var token in r.Tokens)
        {
            if (!DiskArgument.TryParse(token.Value, out DiskOptions? d, out string? error))
            {
                r.AddError(error!);
                return [];
            }
            disks.Add(d!);
        }
        return [.. disks];
    },
};
var console = new Option<ConsoleDevice>("--console") { Description = "The guest console's device: serial (COM1, ttyS0) or virtio (hvc0; pass console=hvc0)", DefaultValueFactory = _ => ConsoleDevice.Serial };
var run = new Command("run", "Run a guest: a kernel given with --kernel, else the built-in demo guest");
foreach (Option option in new Option[] { kernel, initrd, cmdline, mem, cpus, cpuidMask, timeout, logLevel, quiet, onReset, rng, disk, console })
{
    run.Options.Add(option);
}
run.SetAction(r =>
{
    double seconds = r.GetValue(timeout);
    TimeSpan? deadline = seconds > 0 ? TimeSpan.FromSeconds(seconds) : null;
    if (r.GetValue(kernel) is not { } kernelPath)
    {
        return Guarded(() => DemoCommand.Run(deadline ?? Timeout.InfiniteTimeSpan));
    }
    return Guarded(() => KernelCommand.Run(new KernelCommand.Arguments(
        kernelPath,
        r.GetValue(initrd),
        r.GetValue(cmdline) ?? "",
        r.GetValue(mem),
        r.GetValue(cpus),
        [.. (r.GetValue(cpuidMask) ?? []).Select(CpuidMask.Parse)],
        deadline,
        r.GetValue(logLevel),
        r.GetValue(quiet),
        r.GetValue(onReset),
        r.GetValue(rng),
        r.GetValue(disk) ?? [],
        r.GetValue(console))));
});
root.Subcommands.Add(run);

var bench = new Command("bench", "Benchmarks");
var exitsCount = new Option<int>("--exits") { Description = "Exits per round", DefaultValueFactory = _ => 20000 };
var rounds = new Option<int>("--rounds") { Description = "Rounds per variant (the median is reported)", DefaultValueFactory = _ => 9 };
var exits = new Command("exits", "Round trip of a port-I/O exit through the dispatcher against a bare KVM_RUN loop");
exits.Options.Add(exitsCount);
exits.Options.Add(rounds);
exits.SetAction(r => Guarded(() => ExitBench.Run(r.GetValue(exitsCount), r.GetValue(rounds))));
bench.Subcommands.Add(exits);

var guestOption = new Option<string?>("--guest") { Description = "The PVH marker guest (default: build tests/guests/marker)" };
var vmmOption = new Option<string?>("--vmm") { Description = "The vmm binary to measure (default: this one)" };
var qemuOption = new Option<bool>("--qemu") { Description = "Also measure qemu-system-x86_64 -M microvm, alternating" };
var runsOption = new Option<int>("--runs") { Description = "Runs of each", DefaultValueFactory = _ => 15 };
var startup = new Command("startup", "Time from process start to the guest's marker, and peak RSS, against QEMU");
startup.Options.Add(guestOption);
startup.Options.Add(vmmOption);
startup.Options.Add(qemuOption);
startup.Options.Add(runsOption);
startup.SetAction(r => Guarded(() => StartupBench.Run(r.GetValue(guestOption), r.GetValue(vmmOption), r.GetValue(qemuOption), r.GetValue(runsOption))));
bench.Subcommands.Add(startup);

var recallsOption = new Option<int>("--recalls") { Description = "How many recalls", DefaultValueFactory = _ => 2000 };
var recall = new Command("recall", "Time from Recall() on another thread to the Recall handler on the vCPU's thread");
recall.Options.Add(recallsOption);
recall.SetAction(r => Guarded(() => RecallBench.Run(r.GetValue(recallsOption))));
bench.Subcommands.Add(recall);
root.Subcommands.Add(bench);

return root.Parse(args).Invoke();

// Errors VmmSharp raises carry their own clear message; anything else is a bug and shows its stack.
static int Guarded(Func<int> command)
{
    try
    {
        return command();
    }
    catch (Exception e) when (e is VmmException or ArgumentException or FormatException or IOException)
    {
        Console.Error.WriteLine($"vmm: {e.Message}");
        return 1;
    }
}
