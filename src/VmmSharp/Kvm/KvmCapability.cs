namespace VmmSharp.Kvm;

/// <summary>The <c>KVM_CAP_*</c> numbers VmmSharp asks about.</summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public enum KvmCapability
{
    /// <summary>In-kernel interrupt controller (PIC, IOAPIC, LAPIC).</summary>
    Irqchip = 0,

    /// <summary>HLT exits to user space when there is no in-kernel irqchip.</summary>
    Hlt = 1,

    /// <summary>User-space memory slots.</summary>
    UserMemory = 3,

    /// <summary>KVM_SET_TSS_ADDR.</summary>
    SetTssAddr = 4,

    /// <summary>KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2.</summary>
    ExtCpuid = 7,

    /// <summary>The recommended maximum number of vCPUs.</summary>
    NrVcpus = 9,

    /// <summary>The maximum number of memory slots.</summary>
    NrMemslots = 10,

    /// <summary>KVM_GET/SET_MP_STATE.</summary>
    MpState = 14,

    /// <summary>KVM_SET_GUEST_DEBUG (single-step and breakpoints).</summary>
    SetGuestDebug = 23,

    /// <summary>KVM_IRQFD: an eventfd that injects an interrupt on a GSI when signalled.</summary>
    Irqfd = 32,

    /// <summary>The in-kernel PIT, second version.</summary>
    Pit2 = 33,

    /// <summary>KVM_IOEVENTFD: a guest write to an address signals an eventfd instead of exiting.</summary>
    Ioeventfd = 36,

    /// <summary>KVM_SET_IDENTITY_MAP_ADDR.</summary>
    SetIdentityMapAddr = 37,

    /// <summary>KVM_GET/SET_VCPU_EVENTS.</summary>
    VcpuEvents = 41,

    /// <summary>KVM_GET/SET_DEBUGREGS.</summary>
    DebugRegs = 50,

    /// <summary>The maximum number of vCPUs.</summary>
    MaxVcpus = 66,

    /// <summary>The XSAVE state ioctls (<c>KVM_GET_XSAVE</c>/<c>KVM_SET_XSAVE</c>).</summary>
    Xsave = 55,

    /// <summary>The extended control registers ioctls (<c>KVM_GET_XCRS</c>/<c>KVM_SET_XCRS</c>).</summary>
    Xcrs = 56,

    /// <summary>Register state shared through <c>kvm_run</c> (<c>kvm_valid_regs</c>/<c>kvm_dirty_regs</c>).</summary>
    SyncRegs = 74,

    /// <summary>Read-only memory slots; guest writes become MMIO exits.</summary>
    ReadonlyMem = 81,

    /// <summary>The maximum vCPU id.</summary>
    MaxVcpuId = 128,

    /// <summary><c>kvm_run.immediate_exit</c>: a kick that lands just before KVM_RUN is not lost.</summary>
    ImmediateExit = 136,

    /// <summary>MSR accesses KVM cannot handle exit to user space.</summary>
    X86UserSpaceMsr = 188,

    /// <summary>KVM_X86_SET_MSR_FILTER.</summary>
    X86MsrFilter = 189,

    /// <summary>KVM_EXIT_HYPERCALL for selected hypercalls.</summary>
    ExitHypercall = 201,

    /// <summary>KVM_CAP_BINARY_STATS_FD: <c>KVM_GET_STATS_FD</c> gives a VM's or vCPU's counters.</summary>
    BinaryStatsFd = 203,

    /// <summary>Emulation failures report the instruction bytes.</summary>
    ExitOnEmulationFailure = 204,

    /// <summary>KVM_CAP_DISABLE_QUIRKS2.</summary>
    DisableQuirks2 = 213,

    /// <summary><c>KVM_CAP_PIT_STATE2</c>: <c>KVM_GET_PIT2</c>/<c>KVM_SET_PIT2</c>.</summary>
    PitState2 = 35,

    /// <summary><c>KVM_CAP_ADJUST_CLOCK</c>: <c>KVM_GET_CLOCK</c>/<c>KVM_SET_CLOCK</c>; the value is the flags KVM fills in.</summary>
    AdjustClock = 39,

    /// <summary><c>KVM_CAP_TSC_CONTROL</c>: <c>KVM_SET_TSC_KHZ</c>.</summary>
    TscControl = 60,

    /// <summary><c>KVM_CAP_GET_TSC_KHZ</c>.</summary>
    GetTscKhz = 61,

    /// <summary><c>KVM_CAP_KVMCLOCK_CTRL</c>: tell a kvmclock guest it was paused.</summary>
    KvmclockCtrl = 76,

    /// <summary><c>KVM_CAP_GET_MSR_FEATURES</c>: <c>KVM_GET_MSR_FEATURE_INDEX_LIST</c>.</summary>
    GetMsrFeatures = 153,

    /// <summary><c>KVM_CAP_XSAVE2</c>: <c>KVM_GET_XSAVE2</c>; the value is the XSAVE buffer's size.</summary>
    Xsave2 = 208,
}
