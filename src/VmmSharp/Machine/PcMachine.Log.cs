using Microsoft.Extensions.Logging;
using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Kvm;

namespace VmmSharp.Machine;

/// <content>The machine's log messages.</content>
public sealed partial class PcMachine
{
    [LoggerMessage(Level = LogLevel.Information, Message = "loaded {Format} kernel '{Kernel}': {Memory} RAM, {Cpus} vCPU(s), entry 0x{Entry:x}")]
    private static partial void LogLoaded(ILogger logger, KernelFormat format, string kernel, string memory, int cpus, ulong entry);

    [LoggerMessage(Level = LogLevel.Warning, Message = "this host's KVM: {Description}")]
    private static partial void LogPvm(ILogger logger, string description);

    [LoggerMessage(Level = LogLevel.Debug, Message = "CPUID policy {Policy} on a {Host} host hides: {Features} (what a kernel would pick and this host cannot run; policy None shows them)")]
    private static partial void LogCpuidPolicy(ILogger logger, CpuidPolicy policy, HostVirtualizationKind host, string features);

    [LoggerMessage(Level = LogLevel.Information, Message = "run ended: {Outcome}, exit status {Status}: {Reason} ({Milliseconds:0.#} ms)")]
    private static partial void LogFinished(ILogger logger, MachineOutcome outcome, int status, string reason, double milliseconds);

    [LoggerMessage(Level = LogLevel.Debug, Message = "unhandled MMIO {Direction} of {Length} byte(s) at 0x{Address:x}")]
    private static partial void LogUnhandledMmio(ILogger logger, string direction, int length, ulong address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "guest asked for ACPI sleep type {SleepType}; only 5 (soft-off) is supported, ignored")]
    private static partial void LogUnsupportedSleep(ILogger logger, int sleepType);

    [LoggerMessage(Level = LogLevel.Debug, Message = "KVM's statistics could not be read: {Reason}")]
    private static partial void LogNoKvmStatistics(ILogger logger, string reason);
}
