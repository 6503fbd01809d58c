namespace VmmSharp.Dispatch;

/// <summary>How a vCPU's run ended.</summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public enum VcpuRunOutcome
{
    /// <summary>A handler ended the run (the guest shut down, exited with a status, …).</summary>
    Stopped,

    /// <summary>The run was stopped from outside (<see cref="VcpuDispatcher.RequestStop"/>).</summary>
    Cancelled,

    /// <summary>The run failed: an event without a handler, a handler that threw, or a KVM error.</summary>
    Failed,
}

/// <summary>The result of a vCPU's run, handed to whoever runs the VM.</summary>
/// <param name="Outcome">How the run ended.</param>
/// <param name="Status">The status a handler gave (for a guest's exit code), else 0 for a stop and -1 for a failure.</param>
/// <param name="Reason">What happened, in words.</param>
/// <param name="Error">The error, for a failed run.</param>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public sealed record VcpuRunResult(VcpuRunOutcome Outcome, int Status, string Reason, Exception? Error = null);
