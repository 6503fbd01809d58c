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

var timeout = OptionValues.Seconds("--timeout", "Stop the guest after this many seconds");
var kernel = new Option<string?>("--kernel") { Description = "Kernel to boot: PVH ELF, Multiboot ELF or Linux bzImage (recognised from the file)" };
var initrd = new Option<string?>("--initrd") { Description = "Initial ramdisk (Linux), module (Multiboot, PVH)" };
var cmdline = new Option<string>("--cmdline") { Description = "Kernel command line", DefaultValueFactory = _ => "console=ttyS0" };
var mem = OptionValues.MemorySize("--mem", "Guest RAM, e.g. 512M or 2G", MachineOptions.DefaultMemorySize);
var cpus = OptionValues.Count("--cpus", "Number of vCPUs", 1, 1, MpTable.MaxCpus);
var cpuidMask = OptionValues.CpuidMasks("--cpuid-mask", "Hide CPUID bits: LEAF[.SUBLEAF]:REGISTER:MASK, e.g. 0x7.0:ebx:0x20 (repeatable; adds to --cpuid-policy)");
var cpuidPolicy = OptionValues.OneOf("--cpuid-policy", "What CPUID hides before --cpuid-mask: auto is what the host needs (on PVM, what a kernel would pick and PVM cannot run)", CpuidPolicy.Auto);
var logLevel = OptionValues.OneOf("--log-level", "Log VMM events at this level (debug shows unhandled ports; information also prints the summary)", LogLevel.None);
var stats = new Option<bool>("--stats") { Description = "After the run, print a summary on stderr: how it ended, the time, the exits" };
var quiet = new Option<bool>("--quiet") { Description = "No summary (the default; kept for scripts)", Hidden = true };
var onReset = OptionValues.OneOf("--on-reset", "What a guest reset (i8042 0xfe) does: exit, or reboot on a fresh machine", ResetAction.Exit);
var resetStatus = OptionValues.Count("--reset-status", "With --on-reset exit: the exit status of a run the guest ended by resetting (e.g. a kernel's panic=-1 reboot)", 0, 0, 255);
var maxReboots = OptionValues.Count("--max-reboots", "With --on-reset reboot: how many reboots before a reset ends the run", MachineOptions.DefaultMaxReboots, 0, 1_000_000);
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
var net = new Option<NetOptions[]>("--net")
{
    Description = "A virtio-net card on a host TAP: tap=NAME[,mac=MAC] (repeatable)",
    AllowMultipleArgumentsPerToken = false,
    CustomParser = r =>
    {
        var nets = new List<NetOptions>();
        foreach (var token in r.Tokens)
        {
            if (!NetArgument.TryParse(token.Value, out NetOptions? n, out string? error))
            {
                r.AddError(error!);
                return [];
            }
            nets.Add(n!);
        }
        return [.. nets];
    },
};
var profile = new Option<string?>("--profile") { Description = "Sample the guest's RIP (see --profile-interval) and write the top functions to this file" };
var profileInterval = OptionValues.Count("--profile-interval", "With --profile: milliseconds between samples (each is one exit)", 1, 1, 1000);
var symbols = new Option<string?>("--symbols") { Description = "With --profile: the kernel's symbols, an unstripped ELF or a System.map (default: the kernel, if an ELF)" };
var vsock = new Option<VsockOptions?>("--vsock")
{
    Description = "A virtio-vsock device, Firecracker's hybrid vsock: cid=N,uds=PATH (host programs connect to PATH and write CONNECT PORT; the guest's connections to host port P go to PATH_P)",
    CustomParser = r =>
    {
        if (!VsockArgument.TryParse(r.Tokens[0].Value, out VsockOptions? v, out string? error))
        {
            r.AddError(error!);
            return null;
        }
        return v;
    },
};
var apiSock = new Option<string?>("--api-sock") { Description = "Serve Firecracker's REST API on this Unix socket; the guest starts on its InstanceStart (or at once with --config-file)" };
var configFile = new Option<string?>("--config-file") { Description = "Configure the microVM from Firecracker's JSON configuration file and start it" };
var noApi = new Option<bool>("--no-api") { Description = "With --config-file: no API socket (as Firecracker's --no-api)" };
var metricsPath = new Option<string?>("--metrics-path") { Description = "Write Firecracker-style metrics lines to this file or FIFO (on FlushMetrics, every --metrics-interval, and at the end)" };
var metricsInterval = OptionValues.Period("--metrics-interval", "Seconds between the metrics lines written unasked (Firecracker's period is 60)");
var instanceId = new Option<string>("--id") { Description = "The microVM's id, as GET / reports it", DefaultValueFactory = _ => "anonymous-instance" };
var consoleDevice = OptionValues.OneOf("--console", "The device of the guest console: COM1 (ttyS0) or a virtio-console port (hvc0: pass console=hvc0)", ConsoleDevice.Serial);
var snapshotAt = OptionValues.Seconds("--snapshot-at", "Pause the guest after this many seconds, write --snapshot and --snapshot-mem, and exit");
var snapshotState = new Option<string?>("--snapshot") { Description = "With --snapshot-at: the snapshot's state file" };
var snapshotMem = new Option<string?>("--snapshot-mem") { Description = "With --snapshot-at: the snapshot's memory file (sparse)" };
var run = new Command("run", "Run a guest: a kernel given with --kernel, else the built-in demo guest");
foreach (Option option in new Option[] { kernel, initrd, cmdline, mem, cpus, cpuidMask, cpuidPolicy, timeout, logLevel, stats, quiet, onReset, maxReboots, rng, disk, net, vsock, consoleDevice, snapshotAt, snapshotState, snapshotMem, apiSock, configFile, noApi, metricsPath, metricsInterval, instanceId, profile, profileInterval, symbols, resetStatus })
{
    run.Options.Add(option);
}
Option[] kernelRunOptions = [kernel, initrd, cmdline, mem, cpus, cpuidMask, cpuidPolicy, onReset, maxReboots, rng, disk, net, vsock, consoleDevice, snapshotAt, snapshotState, snapshotMem, profile, profileInterval, symbols, resetStatus];
run.Validators.Add(r =>
{
    // --snapshot-at, --snapshot and --snapshot-mem go together.
    bool at = r.GetResult(snapshotAt) is { Implicit: false }, state = r.GetResult(snapshotState) is { Implicit: false }, memFile = r.GetResult(snapshotMem) is { Implicit: false };
    if ((at || state || memFile) && !(at && state && memFile))
    {
        r.AddError("--snapshot-at, --snapshot and --snapshot-mem go together: give all three");
    }
    // A microVM run (Firecracker's way) takes its machine from the API or the file, never from the kernel-run options.
    bool microVm = r.GetResult(apiSock) is not null || r.GetResult(configFile) is not null;
    if (r.GetResult(noApi) is { Implicit: false } && r.GetResult(configFile) is null)
    {
        r.AddError("--no-api needs --config-file FILE (without the API, the file is the only way to configure the microVM)");
    }
    if (r.GetResult(noApi) is { Implicit: false } && r.GetResult(apiSock) is not null)
    {
        r.AddError("--no-api and --api-sock: give one or the other");
    }
    if (r.GetResult(configFile) is not null && r.GetResult(apiSock) is null && r.GetResult(noApi) is not { Implicit: false })
    {
        r.AddError("--config-file FILE needs --api-sock PATH to keep the API, or --no-api (as Firecracker's)");
    }
    foreach (Option option in new Option[] { metricsPath, metricsInterval, instanceId })
    {
        if (!microVm && r.GetResult(option) is { Implicit: false })
        {
            r.AddError($"{option.Name} applies to a microVM run: give --api-sock PATH or --config-file FILE too");
        }
    }
    if (microVm)
    {
        foreach (Option option in kernelRunOptions)
        {
            if (r.GetResult(option) is { Implicit: false })
            {
                r.AddError($"{option.Name} does not apply with --api-sock or --config-file: the microVM is configured through the API or the file");
            }
        }
        return;
    }

    // The demo guest is fixed: options for a kernel run would be silently ignored without a kernel.
    if (r.GetResult(kernel) is not null)
    {
        return;
    }
    foreach (Option option in new Option[] { initrd, cmdline, mem, cpus, cpuidMask, cpuidPolicy, logLevel, stats, onReset, maxReboots, rng, disk, net, vsock, consoleDevice, snapshotAt, profile, profileInterval, symbols, resetStatus })
    {
        if (r.GetResult(option) is { Implicit: false })
        {
            r.AddError($"{option.Name} applies to a kernel run: give --kernel FILE too");
        }
    }
});
run.SetAction(r =>
{
    TimeSpan? deadline = r.GetValue(timeout);
    if (r.GetValue(apiSock) is not null || r.GetValue(configFile) is not null)
    {
        LogLevel? apiLevel = r.GetValue(logLevel) is var al && al != LogLevel.None ? al : null;
        return Guarded(() => MicroVmCommand.Run(new MicroVmCommand.Arguments(
            r.GetValue(apiSock),
            r.GetValue(configFile),
            r.GetValue(metricsPath),
            r.GetValue(instanceId) ?? "anonymous-instance",
            deadline,
            apiLevel,
            r.GetValue(stats) || apiLevel <= LogLevel.Information)
        {
            MetricsInterval = r.GetValue(metricsInterval),
        }));
    }
    if (r.GetValue(kernel) is not { } kernelPath)
    {
        return Guarded(() => DemoCommand.Run(deadline ?? Timeout.InfiniteTimeSpan));
    }
    LogLevel? level = r.GetValue(logLevel) is var l && l != LogLevel.None ? l : null;
    return Guarded(() => KernelCommand.Run(new KernelCommand.Arguments(
        kernelPath,
        r.GetValue(initrd),
        r.GetValue(cmdline) ?? "",
        r.GetValue(mem),
        r.GetValue(cpus),
        r.GetValue(cpuidMask) ?? [],
        r.GetValue(cpuidPolicy),
        deadline,
        level,
        r.GetValue(stats) || level <= LogLevel.Information,
        r.GetValue(onReset),
        r.GetValue(maxReboots),
        r.GetValue(rng),
        r.GetValue(disk) ?? [],
        r.GetValue(net) ?? [],
        r.GetValue(vsock),
        r.GetValue(consoleDevice))
    {
        SnapshotAt = r.GetValue(snapshotAt),
        SnapshotState = r.GetValue(snapshotState),
        SnapshotMemory = r.GetValue(snapshotMem),
        ResetStatus = r.GetValue(resetStatus),
        Profile = r.GetValue(profile) is { } file ? new KernelCommand.ProfileRequest(file, TimeSpan.FromMilliseconds(r.GetValue(profileInterval)), r.GetValue(symbols)) : null,
    }));
});
root.Subcommands.Add(run);

var snapshot = new Command("snapshot", "Snapshots: restore one and run it");
var loadState = new Option<string>("--snapshot") { Description = "The snapshot's state file", Required = true };
var loadMem = new Option<string>("--mem") { Description = "The snapshot's memory file", Required = true };
var loadTimeout = OptionValues.Seconds("--timeout", "Stop the guest after this many seconds");
var loadStats = new Option<bool>("--stats") { Description = "Print the restore time and how the run ended on stderr" };
var load = new Command("load", "Restore a snapshot into a new machine and run it to its end");
foreach (Option option in new Option[] { loadState, loadMem, loadTimeout, loadStats })
{
    load.Options.Add(option);
}
load.SetAction(r => Guarded(() => SnapshotCommand.Load(r.GetValue(loadState)!, r.GetValue(loadMem)!, r.GetValue(loadTimeout), r.GetValue(loadStats))));
snapshot.Subcommands.Add(load);
root.Subcommands.Add(snapshot);

var bench = new Command("bench", "Benchmarks");
var exitsCount = OptionValues.Count("--exits", "Exits per round", 20000, 1, 100_000_000);
var rounds = OptionValues.Count("--rounds", "Rounds per variant (the median is reported)", 9, 1, 10_000);
var exits = new Command("exits", "Round trip of a port-I/O exit through the dispatcher against a bare KVM_RUN loop");
var exitDevices = new Option<bool>("--devices") { Description = "Give each VM an irqchip, a virtio-blk disk and a virtio-rng (ioeventfd, irqfd, event loop running)" };
exits.Options.Add(exitsCount);
exits.Options.Add(rounds);
exits.Options.Add(exitDevices);
exits.SetAction(r => Guarded(() => ExitBench.Run(r.GetValue(exitsCount), r.GetValue(rounds), r.GetValue(exitDevices))));
bench.Subcommands.Add(exits);

var guestOption = new Option<string?>("--guest") { Description = "The PVH marker guest (default: build tests/guests/marker)" };
var vmmOption = new Option<string?>("--vmm") { Description = "The vmm binary to measure (default: this one)" };
var qemuOption = new Option<bool>("--qemu") { Description = "Also measure qemu-system-x86_64 -M microvm, alternating" };
var runsOption = OptionValues.Count("--runs", "Runs of each", 15, 1, 10_000);
var startup = new Command("startup", "Time from process start to the guest's marker, and peak RSS, against QEMU");
startup.Options.Add(guestOption);
startup.Options.Add(vmmOption);
startup.Options.Add(qemuOption);
startup.Options.Add(runsOption);
startup.SetAction(r => Guarded(() => StartupBench.Run(r.GetValue(guestOption), r.GetValue(vmmOption), r.GetValue(qemuOption), r.GetValue(runsOption))));
bench.Subcommands.Add(startup);

var apiRunsOption = OptionValues.Count("--runs", "Runs of each", 15, 1, 10_000);
var apiBench = new Command("api", "What --api-sock costs: time to the socket accepting and to the guest's marker, and peak RSS, against a plain run");
apiBench.Options.Add(guestOption);
apiBench.Options.Add(vmmOption);
apiBench.Options.Add(apiRunsOption);
apiBench.SetAction(r => Guarded(() => ApiBench.Run(r.GetValue(guestOption), r.GetValue(vmmOption), r.GetValue(apiRunsOption))));
bench.Subcommands.Add(apiBench);

var recallsOption = OptionValues.Count("--recalls", "How many recalls", 2000, 1, 10_000_000);
var recall = new Command("recall", "Time from Recall() on another thread to the Recall handler on the vCPU's thread");
recall.Options.Add(recallsOption);
recall.SetAction(r => Guarded(() => RecallBench.Run(r.GetValue(recallsOption))));
bench.Subcommands.Add(recall);

var emulatedOption = OptionValues.Count("--instructions", "Emulated instructions per round", 5000, 1, 1_000_000);
var fallbackRounds = OptionValues.Count("--rounds", "Rounds per instruction and per baseline, alternating (the median is reported)", 5, 1, 1000);
var fallbackBench = new Command("fallback", "Cost of an instruction the emulation fallback finishes (int3, cmpxchg16b) at CPL0");
fallbackBench.Options.Add(emulatedOption);
fallbackBench.Options.Add(fallbackRounds);
fallbackBench.SetAction(r => Guarded(() => FallbackBench.Run(r.GetValue(emulatedOption), r.GetValue(fallbackRounds))));
bench.Subcommands.Add(fallbackBench);
var snapshotRounds = OptionValues.Count("--rounds", "Rounds of each measurement (the median is reported)", 5, 1, 1000);
var snapshotBench = new Command("snapshot", "Snapshot create, restore in a new process and in-process reset, 128 MiB/1 vCPU and 512 MiB/2 vCPUs");
snapshotBench.Options.Add(snapshotRounds);
snapshotBench.Options.Add(vmmOption);
snapshotBench.SetAction(r => Guarded(() => SnapshotBench.Run(r.GetValue(snapshotRounds), r.GetValue(vmmOption))));
bench.Subcommands.Add(snapshotBench);

var benchGuest = new Option<string?>("--guest") { Description = "The virtio-bench guest (default: build tests/guests/virtio-bench)" };
var benchRounds = OptionValues.Count("--rounds", "Rounds of each (the median is reported)", 3, 1, 1000);
var blkRequests = OptionValues.Count("--requests", "4 KiB requests per test and round", 50000, 256, 100_000_000);
var blkDiskMiB = OptionValues.Count("--disk-mib", "Size of the raw image the guest reads and writes, in MiB", 64, 1, 65536);
var blkBench = new Command("blk", "virtio-blk IOPS: 4 KiB sequential and random reads and writes, deep queue, against QEMU microvm");
foreach (Option option in new Option[] { benchGuest, vmmOption, qemuOption, benchRounds, blkRequests, blkDiskMiB })
{
    blkBench.Options.Add(option);
}
blkBench.SetAction(r => Guarded(() => BlkBench.Run(r.GetValue(benchGuest), r.GetValue(vmmOption), r.GetValue(qemuOption),
    r.GetValue(benchRounds), r.GetValue(blkRequests), r.GetValue(blkDiskMiB))));
bench.Subcommands.Add(blkBench);

var netFrames = OptionValues.Count("--frames", "Frames each way per round", 100000, 256, 100_000_000);
var netBench = new Command("net", "virtio-net packets per second guest->TAP and TAP->guest, in a network namespace of its own, against QEMU microvm");
foreach (Option option in new Option[] { benchGuest, vmmOption, qemuOption, benchRounds, netFrames })
{
    netBench.Options.Add(option);
}
netBench.SetAction(r => Guarded(() => NetBench.Run(r.GetValue(benchGuest), r.GetValue(vmmOption), r.GetValue(qemuOption),
    r.GetValue(benchRounds), r.GetValue(netFrames))));
bench.Subcommands.Add(netBench);
root.Subcommands.Add(bench);

ParseResult parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // One line per mistake, naming the value; no usage screen in between (vmm COMMAND --help shows it).
    foreach (System.CommandLine.Parsing.ParseError error in parsed.Errors)
    {
        Console.Error.WriteLine($"vmm: {error.Message}");
    }
    return 1;
}
return parsed.Invoke();

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
