using Microsoft.Extensions.Logging;
using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Cli.Terminal;
using VmmSharp.Devices.Consoles;
using VmmSharp.Machine;
using VmmSharp.Profiling;

namespace VmmSharp.Cli.Commands;

/// <summary>
/// <c>vmm run --kernel FILE</c>: boot a PVH, Multiboot or Linux bzImage kernel on the PC machine. Like QEMU, it prints
/// nothing of its own on success: stdout carries the guest's console, stderr only real errors (and the summary, when
/// asked for with <c>--stats</c>).
/// </summary>
internal static class KernelCommand
{
    /// <summary>How long the guest's last output may take to reach a slow standard output before the command gives up on it.</summary>
    private static readonly TimeSpan OutputDrainTimeout = TimeSpan.FromSeconds(2);

    public sealed record Arguments(
        string Kernel,
        string? Initrd,
        string CommandLine,
        ulong Memory,
        int Cpus,
        IReadOnlyList<CpuidMask> CpuidMasks,
        CpuidPolicy CpuidPolicy,
        TimeSpan? Deadline,
        LogLevel? LogLevel,
        bool Stats,
        ResetAction OnReset,
        int MaxReboots,
        bool Rng,
        IReadOnlyList<DiskOptions> Disks,
        IReadOnlyList<NetOptions> Networks,
        VsockOptions? Vsock,
        ConsoleDevice ConsoleDevice)
    {
        /// <summary>With <see cref="SnapshotState"/> and <see cref="SnapshotMemory"/>: pause, snapshot and exit after this long.</summary>
        public TimeSpan? SnapshotAt { get; init; }

        /// <summary>Where <see cref="SnapshotAt"/> writes the state file.</summary>
        public string? SnapshotState { get; init; }

        /// <summary>Where <see cref="SnapshotAt"/> writes the memory file.</summary>
        public string? SnapshotMemory { get; init; }

        /// <summary>The exit status of a run the guest ended by a reset, with <see cref="ResetAction.Exit"/> (<c>--reset-status</c>).</summary>
        public int ResetStatus { get; init; }

        /// <summary>Where set, sample the guest (<c>--profile</c>).</summary>
        public ProfileRequest? Profile { get; init; }
    }

    /// <summary><c>--profile FILE --profile-interval MS --symbols FILE</c>.</summary>
    public sealed record ProfileRequest(string Output, TimeSpan Interval, string? Symbols);

    // With --stats: KVM's own counters worth a look, when not zero (KVM_GET_STATS_FD names).
    private static readonly string[] KvmCounters =
        ["exits", "io_exits", "mmio_exits", "irq_exits", "halt_exits", "irq_window_exits", "signal_exits", "request_irq_exits",
         "insn_emulation", "insn_emulation_fail", "pf_guest", "pf_fixed", "pf_emulate", "irq_injections", "exception_exits"];

    public static int Run(Arguments args)
    {
        SymbolTable? symbols = null;
        if (args.Profile is { } p)
        {
            // Read before the run, so that a bad symbol file costs no boot.
            string from = p.Symbols ?? args.Kernel;
            try
            {
                symbols = p.Symbols is null && !IsElf(from) ? SymbolTable.Empty : SymbolTable.Load(from);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"vmm: error: --symbols: {e.Message}");
                return MachineResult.FailureStatus;
            }
        }
        using ILoggerFactory? logging = args.LogLevel is { } level
            ? LoggerFactory.Create(b => b
                .AddSimpleConsole(o => o.SingleLine = true)
                .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace) // stdout is the guest's
                .SetMinimumLevel(level))
            : null;
        // The guest writes into a bounded buffer; only this output's own thread ever waits for stdout.
        using var output = ConsoleOutput.StandardOutput();
        using TerminalInput input = TerminalInput.StandardInput();
        var options = new MachineOptions(args.Kernel)
        {
            InitrdPath = args.Initrd,
            CommandLine = args.CommandLine,
            MemorySize = args.Memory,
            CpuCount = args.Cpus,
            CpuidMasks = args.CpuidMasks,
            CpuidPolicy = args.CpuidPolicy,
            Console = new HostConsole(output, input),
            Deadline = args.Deadline,
            Logger = logging?.CreateLogger("vmm"),
            OnReset = args.OnReset,
            ResetExitStatus = args.ResetStatus,
            MaxReboots = args.MaxReboots,
            Rng = args.Rng,
            Disks = args.Disks,
            Networks = args.Networks,
            Vsock = args.Vsock,
            ConsoleDevice = args.ConsoleDevice,
            // vmm exits right after: KVM's teardown of the VM (15-35 ms here) happens in a helper, off the exit path.
            HandOffTeardown = true,
            ProfileInterval = args.Profile?.Interval,
        };
        KernelFormat format = default;
        MachineResult result = MachineRunner.Run(options, machine =>
        {
            format = machine.Boot.Format;
            if (args.SnapshotAt is { } at)
            {
                SnapshotCommand.ScheduleSnapshot(machine, at, args.SnapshotState!, args.SnapshotMemory!);
            }
        });
        input.Dispose(); // the user's terminal back before anything more is printed
        bool drained = output.Flush(OutputDrainTimeout);

        bool failed = result.Outcome is MachineOutcome.Failed or MachineOutcome.DeadlineExceeded or MachineOutcome.RebootLimitReached;
        if (args.Stats)
        {
            Summary.Print($"{(failed ? "error: " : "")}{result.Reason}; status {result.ExitStatus}", result.Elapsed, result.ExitCounts,
                $"{format} kernel{(output.DroppedBytes > 0 ? $", {output.DroppedBytes} bytes of console output dropped" : "")}",
                result.EmulatedInstructions);
        }
        else if (failed)
        {
            Console.Error.WriteLine($"vmm: error: {Describe(result, args)}; status {result.ExitStatus}");
        }
        if (args.Stats && result.KvmStatistics.Count > 0)
        {
            Console.Error.WriteLine("vmm: kvm: " + string.Join(' ', KvmCounters
                .Where(n => result.KvmStatistics.GetValueOrDefault(n) != 0).Select(n => $"{n} {result.KvmStatistics[n]}")));
        }
        if (args.Profile is { } request && result.Profile is { } profile)
        {
            WriteProfile(request, profile, symbols!);
        }
        if (!drained)
        {
            Console.Error.WriteLine($"vmm: the guest's last output did not reach standard output within {OutputDrainTimeout.TotalSeconds:0} s (nobody is reading it); it is dropped");
        }
        return result.ExitStatus;
    }

    private static bool IsElf(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using FileStream f = File.OpenRead(path);
        return f.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("\u007fELF"u8);
    }

    private static void WriteProfile(ProfileRequest request, GuestProfile profile, SymbolTable symbols)
    {
        try
        {
            using (var writer = new StreamWriter(request.Output))
            {
                profile.WriteReport(writer, symbols);
            }
            IEnumerable<string> top = profile.ByFunction(symbols).Take(5).Select(e => $"{e.Name} {100.0 * e.Samples / Math.Max(1, profile.Total):0.0}%");
            Console.Error.WriteLine($"vmm: profile: {profile.Total} samples{(symbols.Count == 0 ? " (no symbols: give --symbols System.map)" : "")}, " +
                $"top: {string.Join(", ", top)}; written to {request.Output}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"vmm: error: --profile: cannot write '{request.Output}': {e.Message}");
        }
    }

    private static string Describe(MachineResult result, Arguments args) => result.Outcome == MachineOutcome.RebootLimitReached
        ? $"the guest reset again after {result.Reboots} reboots, the limit (--max-reboots {args.MaxReboots})"
        : result.Reason;
}
