using Microsoft.Extensions.Logging;
using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Machine;

namespace VmmSharp.Cli.Commands;

/// <summary><c>vmm run --kernel FILE</c>: boot a PVH, Multiboot or Linux bzImage kernel on the PC machine.</summary>
internal static class KernelCommand
{
    public sealed record Arguments(
        string Kernel,
        string? Initrd,
        string CommandLine,
        ulong Memory,
        int Cpus,
        IReadOnlyList<CpuidMask> CpuidMasks,
        TimeSpan? Deadline,
        LogLevel? LogLevel,
        bool Quiet,
        ResetAction OnReset,
        bool Rng,
        IReadOnlyList<DiskOptions> Disks,
        ConsoleDevice Console);

    public static int Run(Arguments args)
    {
        using ILoggerFactory? logging = args.LogLevel is { } level
            ? LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(level))
            : null;
        using Stream stdout = Console.OpenStandardOutput();
        var options = new MachineOptions(args.Kernel)
        {
            InitrdPath = args.Initrd,
            CommandLine = args.CommandLine,
            MemorySize = args.Memory,
            CpuCount = args.Cpus,
            CpuidMasks = args.CpuidMasks,
            SerialOutput = stdout,
            SerialInput = true,
            Deadline = args.Deadline,
            Logger = logging?.CreateLogger("vmm"),
            OnReset = args.OnReset,
            Rng = args.Rng,
            Disks = args.Disks,
            Console = args.Console,
        };
        KernelFormat format = default;
        MachineResult result = MachineRunner.Run(options, machine => format = machine.Boot.Format);
        stdout.Flush();
        if (!args.Quiet || !result.GuestEnded)
        {
            bool failed = result.Outcome is MachineOutcome.Failed or MachineOutcome.DeadlineExceeded;
            Summary.Print($"{(failed ? "error: " : "")}{result.Reason}; status {result.ExitStatus}", result.Elapsed, result.ExitCounts, $"{format} kernel");
        }
        return result.ExitStatus;
    }
}
