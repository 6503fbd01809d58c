using System.Runtime.InteropServices;

namespace VmmSharp.Kvm;

/// <summary>
/// The layout of <c>struct kvm_run</c>, the page KVM shares with each vCPU thread. It is only ever
/// accessed through a pointer into the mapping, never copied.
/// </summary>
[StructLayout(LayoutKind.Explicit)]
internal unsafe struct KvmRun
{
    [FieldOffset(0)] public byte RequestInterruptWindow;
    [FieldOffset(1)] public byte ImmediateExit;
    [FieldOffset(8)] public uint ExitReason;
    [FieldOffset(12)] public byte ReadyForInterruptInjection;
    [FieldOffset(13)] public byte IfFlag;
    [FieldOffset(14)] public ushort Flags;
    [FieldOffset(16)] public ulong Cr8;
    [FieldOffset(24)] public ulong ApicBase;

    // KVM_EXIT_IO
    [FieldOffset(32)] public byte IoDirection;
    [FieldOffset(33)] public byte IoSize;
    [FieldOffset(34)] public ushort IoPort;
    [FieldOffset(36)] public uint IoCount;
    [FieldOffset(40)] public ulong IoDataOffset;

    // KVM_EXIT_MMIO
    [FieldOffset(32)] public ulong MmioPhysAddr;
    [FieldOffset(40)] public fixed byte MmioData[8];
    [FieldOffset(48)] public uint MmioLen;
    [FieldOffset(52)] public byte MmioIsWrite;

    // KVM_EXIT_FAIL_ENTRY
    [FieldOffset(32)] public ulong FailEntryReason;
    [FieldOffset(40)] public uint FailEntryCpu;

    // KVM_EXIT_EXCEPTION
    [FieldOffset(32)] public uint ExceptionNr;
    [FieldOffset(36)] public uint ExceptionErrorCode;

    // KVM_EXIT_DEBUG
    [FieldOffset(32)] public uint DebugException;
    [FieldOffset(40)] public ulong DebugPc;
    [FieldOffset(48)] public ulong DebugDr6;
    [FieldOffset(56)] public ulong DebugDr7;

    // KVM_EXIT_INTERNAL_ERROR (and its emulation-failure form)
    [FieldOffset(32)] public uint InternalSuberror;
    [FieldOffset(36)] public uint InternalNdata;
    [FieldOffset(40)] public fixed ulong InternalData[16];
    [FieldOffset(40)] public ulong EmulationFlags;
    [FieldOffset(48)] public byte EmulationInsnSize;
    [FieldOffset(49)] public fixed byte EmulationInsnBytes[15];

    // KVM_EXIT_SYSTEM_EVENT
    [FieldOffset(32)] public uint SystemEventType;
    [FieldOffset(36)] public uint SystemEventNdata;
    [FieldOffset(40)] public fixed ulong SystemEventData[16];

    // KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR
    [FieldOffset(32)] public byte MsrError;
    [FieldOffset(40)] public uint MsrReason;
    [FieldOffset(44)] public uint MsrIndex;
    [FieldOffset(48)] public ulong MsrData;

    [FieldOffset(288)] public ulong ValidRegs;
    [FieldOffset(296)] public ulong DirtyRegs;
    [FieldOffset(304)] public KvmRegs SyncRegs;
    [FieldOffset(448)] public KvmSregs SyncSregs;
    [FieldOffset(760)] public KvmVcpuEvents SyncEvents;

    public const ulong SyncX86Regs = 1;
    public const ulong SyncX86Sregs = 2;
    public const ulong SyncX86Events = 4;
}

/// <summary>
/// KVM's exit reasons (<c>KVM_EXIT_*</c> in <c>linux/kvm.h</c>), the values of <see cref="KvmExit.Reason"/>.
/// Only the ones VmmSharp handles are named; any other value may appear.
/// </summary>
/// <remarks>Threading: immutable; any thread may use it.</remarks>
public static class KvmExitReason
{
    /// <summary><c>KVM_EXIT_UNKNOWN</c>: the hardware exit reason KVM did not know.</summary>
    public const uint Unknown = 0;

    /// <summary><c>KVM_EXIT_EXCEPTION</c>: a guest exception KVM was asked to report.</summary>
    public const uint Exception = 1;

    /// <summary><c>KVM_EXIT_IO</c>: a port-I/O access (IN, OUT, INS, OUTS).</summary>
    public const uint Io = 2;

    /// <summary><c>KVM_EXIT_HYPERCALL</c>.</summary>
    public const uint Hypercall = 3;

    /// <summary><c>KVM_EXIT_DEBUG</c>: a single step or breakpoint.</summary>
    public const uint Debug = 4;

    /// <summary><c>KVM_EXIT_HLT</c>: HLT without the in-kernel irqchip.</summary>
    public const uint Hlt = 5;

    /// <summary><c>KVM_EXIT_MMIO</c>: an access to guest-physical memory no slot backs.</summary>
    public const uint Mmio = 6;

    /// <summary><c>KVM_EXIT_IRQ_WINDOW_OPEN</c>: the guest can take an interrupt now.</summary>
    public const uint IrqWindowOpen = 7;

    /// <summary><c>KVM_EXIT_SHUTDOWN</c>: the vCPU shut down (a triple fault).</summary>
    public const uint Shutdown = 8;

    /// <summary><c>KVM_EXIT_FAIL_ENTRY</c>: the hardware refused to enter the guest.</summary>
    public const uint FailEntry = 9;

    /// <summary><c>KVM_EXIT_INTR</c>: a signal or <c>immediate_exit</c> interrupted KVM_RUN.</summary>
    public const uint Intr = 10;

    /// <summary><c>KVM_EXIT_INTERNAL_ERROR</c>: KVM could not go on (an emulation failure, for one).</summary>
    public const uint InternalError = 17;

    /// <summary><c>KVM_EXIT_SYSTEM_EVENT</c>: a shutdown, reset or crash the guest requested.</summary>
    public const uint SystemEvent = 24;

    /// <summary><c>KVM_EXIT_X86_RDMSR</c>: an RDMSR user space is asked to answer.</summary>
    public const uint X86Rdmsr = 29;

    /// <summary><c>KVM_EXIT_X86_WRMSR</c>: a WRMSR user space is asked to handle.</summary>
    public const uint X86Wrmsr = 30;
}
