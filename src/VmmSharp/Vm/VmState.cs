namespace VmmSharp.Vm;

/// <summary>
/// Where a <see cref="VirtualMachine"/> is in its life: <see cref="Configured"/> → <see cref="Running"/> ⇄
/// <see cref="Paused"/> → <see cref="Stopped"/>. A VM restored from a snapshot starts <see cref="Paused"/>.
/// </summary>
public enum VmState
{
    /// <summary>Built, not run yet: vCPUs and handlers may still be added.</summary>
    Configured,

    /// <summary>The vCPUs run the guest.</summary>
    Running,

    /// <summary>Every vCPU is parked outside <c>KVM_RUN</c> with its state consistent: state may be read and written.</summary>
    Paused,

    /// <summary>The run has ended (or the VM was disposed); it cannot run again.</summary>
    Stopped,
}
