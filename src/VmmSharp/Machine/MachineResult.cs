using VmmSharp.Dispatch;

namespace VmmSharp.Machine;

/// <summary>How a <see cref="PcMachine"/> run ended.</summary>
public enum MachineOutcome
{
    /// <summary>The guest wrote to the debug-exit port (0xf4); <see cref="MachineResult.ExitStatus"/> is (v &lt;&lt; 1) | 1.</summary>
    DebugExit,

    /// <summary>The guest shut down (KVM's shutdown system event, e.g. ACPI S5 or PSCI-like off): status 0.</summary>
    Shutdown,

    /// <summary>The guest asked for a reset and <see cref="ResetAction.Exit"/> ended the run.</summary>
    Reset,

    /// <summary>The run was stopped from outside (<see cref="PcMachine.RequestStop"/>, Ctrl-A x).</summary>
    Stopped,

    /// <summary>The deadline passed: status <see cref="MachineResult.DeadlineStatus"/>.</summary>
    DeadlineExceeded,

    /// <summary>
    /// The guest asked for a reset again after <see cref="MachineOptions.MaxReboots"/> reboots: status
    /// <see cref="MachineResult.FailureStatus"/>.
    /// </summary>
    RebootLimitReached,

    /// <summary>The guest failed (triple fault, an instruction KVM cannot run, …) or the VMM did: status <see cref="MachineResult.FailureStatus"/>.</summary>
    Failed,
}

/// <summary>The result of <see cref="PcMachine.Run"/>.</summary>
public sealed record MachineResult
{
    /// <summary>The exit status of a failed run. Even, so it never collides with a debug-exit status (always odd).</summary>
    public const int FailureStatus = 2;

    /// <summary>The exit status of a run that passed its deadline (as timeout(1) reports).</summary>
    public const int DeadlineStatus = 124;

    /// <summary>How the run ended.</summary>
    public required MachineOutcome Outcome { get; init; }

    /// <summary>
    /// The status for the process to exit with: the debug-exit status if the guest wrote one, 0 for a clean shutdown,
    /// <see cref="FailureStatus"/> or <see cref="DeadlineStatus"/> when it failed, or the status given to a stop.
    /// </summary>
    public required int ExitStatus { get; init; }

    /// <summary>What happened, in words (for a failure: where the guest was, with the instruction disassembled).</summary>
    public required string Reason { get; init; }

    /// <summary>Whether the guest ended the run itself (debug-exit, shutdown or reset) rather than failing or being stopped.</summary>
    public bool GuestEnded => Outcome is MachineOutcome.DebugExit or MachineOutcome.Shutdown or MachineOutcome.Reset;

    /// <summary>The wall-clock time from the first vCPU's start to the end of the run.</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>The events delivered to handlers, summed over the vCPUs (events that never happened are left out).</summary>
    public required IReadOnlyDictionary<VcpuEvent, long> ExitCounts { get; init; }

    /// <summary>The instructions the emulation fallback finished for KVM, per mnemonic, most frequent first.</summary>
    public IReadOnlyList<KeyValuePair<string, long>> EmulatedInstructions { get; init; } = [];

    /// <summary>
    /// KVM's own counters, summed over the vCPUs (<see cref="Kvm.KvmVcpu.ReadStatistics"/>): exits of every kind, also
    /// those KVM handled itself (<c>exits</c>, <c>io_exits</c>, <c>halt_exits</c>…), and <c>insn_emulation</c>, the
    /// instructions its emulator ran (on PVM: the guest's kernel code). Empty where the kernel has no binary statistics.
    /// </summary>
    public IReadOnlyDictionary<string, long> KvmStatistics { get; init; } = new Dictionary<string, long>();

    /// <summary>Where <see cref="MachineOptions.ProfileInterval"/> was set: the RIP samples of the run; else null.</summary>
    public Profiling.GuestProfile? Profile { get; init; }

    /// <summary>How many times the guest rebooted before this run (<see cref="ResetAction.Reboot"/>).</summary>
    public int Reboots { get; init; }

    /// <summary>The error behind a failure, if there was one.</summary>
    public Exception? Error { get; init; }
}
