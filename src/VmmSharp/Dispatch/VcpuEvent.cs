namespace VmmSharp.Dispatch;

/// <summary>
/// The events a vCPU delivers to its dispatcher: KVM's exits, plus <see cref="Startup"/> and <see cref="Recall"/>
/// as on NOVA. Each has at most one handler.
/// </summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public enum VcpuEvent
{
    /// <summary>Before the first guest instruction: the handler sets the initial state.</summary>
    Startup,

    /// <summary>The vCPU was kicked out of KVM_RUN on request (see <see cref="VcpuDispatcher.Recall"/>).</summary>
    Recall,

    /// <summary>Port I/O (KVM_EXIT_IO): port, size, direction, count and data.</summary>
    Io,

    /// <summary>Access to guest-physical memory no RAM backs (KVM_EXIT_MMIO): address, length, direction, data.</summary>
    Mmio,

    /// <summary>The guest executed HLT (KVM_EXIT_HLT); only without the in-kernel irqchip.</summary>
    Hlt,

    /// <summary>The guest triple-faulted (KVM_EXIT_SHUTDOWN).</summary>
    Shutdown,

    /// <summary>KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY): the hardware reason.</summary>
    EntryFailure,

    /// <summary>KVM failed internally (KVM_EXIT_INTERNAL_ERROR), e.g. an instruction it cannot emulate.</summary>
    InternalError,

    /// <summary>A single step or breakpoint (KVM_EXIT_DEBUG).</summary>
    Debug,

    /// <summary>RDMSR of an MSR routed to user space (KVM_EXIT_X86_RDMSR).</summary>
    MsrRead,

    /// <summary>WRMSR of an MSR routed to user space (KVM_EXIT_X86_WRMSR).</summary>
    MsrWrite,

    /// <summary>The guest can take an external interrupt now (KVM_EXIT_IRQ_WINDOW_OPEN, or a HLT with the window open).</summary>
    IrqWindow,

    /// <summary>The guest asked for a system-wide event (KVM_EXIT_SYSTEM_EVENT): reset, shutdown, crash.</summary>
    SystemEvent,
}
