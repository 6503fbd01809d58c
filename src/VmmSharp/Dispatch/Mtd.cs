namespace VmmSharp.Dispatch;

/// <summary>
/// The message transfer descriptor: the groups of guest state a handler sees and may change.
/// The bit values are NOVA's, so a reader of the seed finds the same groups. A handler sees exactly
/// the groups its MTD names; on reply, only the groups it changed are written back to KVM.
/// </summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
[Flags]
public enum Mtd : uint
{
    /// <summary>No state.</summary>
    None = 0,

    /// <summary>RAX, RCX, RDX, RBX.</summary>
    Acdb = 1u << 0,

    /// <summary>RBP, RSI, RDI.</summary>
    Bsd = 1u << 1,

    /// <summary>RSP.</summary>
    Rsp = 1u << 2,

    /// <summary>RIP (NOVA's RIP_LEN).</summary>
    Rip = 1u << 3,

    /// <summary>RFLAGS.</summary>
    Rflags = 1u << 4,

    /// <summary>DS and ES.</summary>
    DsEs = 1u << 5,

    /// <summary>FS and GS.</summary>
    FsGs = 1u << 6,

    /// <summary>CS and SS.</summary>
    CsSs = 1u << 7,

    /// <summary>TR.</summary>
    Tr = 1u << 8,

    /// <summary>LDTR.</summary>
    Ldtr = 1u << 9,

    /// <summary>GDTR.</summary>
    Gdtr = 1u << 10,

    /// <summary>IDTR.</summary>
    Idtr = 1u << 11,

    /// <summary>CR0, CR2, CR3, CR4 and CR8.</summary>
    Cr = 1u << 12,

    /// <summary>DR0–DR3, DR6, DR7.</summary>
    Dr = 1u << 13,

    /// <summary>The SYSENTER MSRs (CS, ESP, EIP).</summary>
    Sysenter = 1u << 14,

    /// <summary>The exit qualification: what the exit was about (port, address, MSR, reason…). Costs no transfer.</summary>
    Qual = 1u << 15,

    /// <summary>Injection: exceptions, external interrupts and the interrupt-window request.</summary>
    Inj = 1u << 17,

    /// <summary>Interruptibility state: interrupt shadow and NMI masking.</summary>
    Sta = 1u << 18,

    /// <summary>The time-stamp counter (IA32_TSC).</summary>
    Tsc = 1u << 19,

    /// <summary>EFER.</summary>
    Efer = 1u << 20,

    /// <summary>R8–R15.</summary>
    R8R15 = 1u << 22,

    /// <summary>STAR, LSTAR, CSTAR, FMASK and KERNEL_GS_BASE.</summary>
    SyscallSwapgs = 1u << 23,

    /// <summary>The x87 and SSE state.</summary>
    Fpu = 1u << 31,

    /// <summary>The general-purpose registers with RIP and RFLAGS: all of <c>kvm_regs</c>.</summary>
    Gpr = Acdb | Bsd | Rsp | Rip | Rflags | R8R15,

    /// <summary>All segment and descriptor-table registers.</summary>
    Segments = DsEs | FsGs | CsSs | Tr | Ldtr | Gdtr | Idtr,

    /// <summary>Every group.</summary>
    All = Gpr | Segments | Cr | Dr | Sysenter | Qual | Inj | Sta | Tsc | Efer | SyscallSwapgs | Fpu,
}
