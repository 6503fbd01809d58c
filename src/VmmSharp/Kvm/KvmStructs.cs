using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

#pragma warning disable CA1051 // Interop structs mirror linux/kvm.h field for field.

namespace VmmSharp.Kvm;

/// <summary><c>struct kvm_regs</c>: the general-purpose registers, RIP and RFLAGS.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public struct KvmRegs
{
    /// <summary>RAX.</summary>
    public ulong Rax;
    /// <summary>RBX.</summary>
    public ulong Rbx;
    /// <summary>RCX.</summary>
    public ulong Rcx;
    /// <summary>RDX.</summary>
    public ulong Rdx;
    /// <summary>RSI.</summary>
    public ulong Rsi;
    /// <summary>RDI.</summary>
    public ulong Rdi;
    /// <summary>RSP.</summary>
    public ulong Rsp;
    /// <summary>RBP.</summary>
    public ulong Rbp;
    /// <summary>R8.</summary>
    public ulong R8;
    /// <summary>R9.</summary>
    public ulong R9;
    /// <summary>R10.</summary>
    public ulong R10;
    /// <summary>R11.</summary>
    public ulong R11;
    /// <summary>R12.</summary>
    public ulong R12;
    /// <summary>R13.</summary>
    public ulong R13;
    /// <summary>R14.</summary>
    public ulong R14;
    /// <summary>R15.</summary>
    public ulong R15;
    /// <summary>RIP.</summary>
    public ulong Rip;
    /// <summary>RFLAGS.</summary>
    public ulong Rflags;
}

/// <summary><c>struct kvm_segment</c>: a segment register with its hidden descriptor part.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public struct KvmSegment
{
    /// <summary>Segment base address.</summary>
    public ulong Base;
    /// <summary>Segment limit in bytes (already scaled by granularity).</summary>
    public uint Limit;
    /// <summary>Selector.</summary>
    public ushort Selector;
    /// <summary>Descriptor type field (4 bits).</summary>
    public byte Type;
    /// <summary>Present bit.</summary>
    public byte Present;
    /// <summary>Descriptor privilege level.</summary>
    public byte Dpl;
    /// <summary>Default operand size (D/B).</summary>
    public byte Db;
    /// <summary>Code/data (1) or system (0) descriptor.</summary>
    public byte S;
    /// <summary>64-bit code segment.</summary>
    public byte L;
    /// <summary>Granularity.</summary>
    public byte G;
    /// <summary>Available for software.</summary>
    public byte Avl;
    /// <summary>Segment is unusable (null selector loaded).</summary>
    public byte Unusable;
    /// <summary>Padding.</summary>
    public byte Padding;
}

/// <summary><c>struct kvm_dtable</c>: a descriptor-table register (GDTR, IDTR).</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public struct KvmDtable
{
    /// <summary>Base address.</summary>
    public ulong Base;
    /// <summary>Limit.</summary>
    public ushort Limit;
    private ushort _pad0;
    private ushort _pad1;
    private ushort _pad2;
}

/// <summary><c>struct kvm_sregs</c>: segment, descriptor-table and control registers, EFER and the APIC base.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public struct KvmSregs
{
    /// <summary>CS.</summary>
    public KvmSegment Cs;
    /// <summary>DS.</summary>
    public KvmSegment Ds;
    /// <summary>ES.</summary>
    public KvmSegment Es;
    /// <summary>FS.</summary>
    public KvmSegment Fs;
    /// <summary>GS.</summary>
    public KvmSegment Gs;
    /// <summary>SS.</summary>
    public KvmSegment Ss;
    /// <summary>TR.</summary>
    public KvmSegment Tr;
    /// <summary>LDTR.</summary>
    public KvmSegment Ldt;
    /// <summary>GDTR.</summary>
    public KvmDtable Gdt;
    /// <summary>IDTR.</summary>
    public KvmDtable Idt;
    /// <summary>CR0.</summary>
    public ulong Cr0;
    /// <summary>CR2.</summary>
    public ulong Cr2;
    /// <summary>CR3.</summary>
    public ulong Cr3;
    /// <summary>CR4.</summary>
    public ulong Cr4;
    /// <summary>CR8 (task priority).</summary>
    public ulong Cr8;
    /// <summary>EFER.</summary>
    public ulong Efer;
    /// <summary>IA32_APIC_BASE.</summary>
    public ulong ApicBase;
    /// <summary>Pending external interrupts, one bit per vector (user-space irqchip only).</summary>
    public KvmU64x4 InterruptBitmap;
}

/// <summary><c>struct kvm_vcpu_events</c>: pending exceptions, interrupts, NMIs and the interrupt shadow.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmVcpuEvents
{
    /// <summary>An exception is being injected.</summary>
    public byte ExceptionInjected;
    /// <summary>Exception vector.</summary>
    public byte ExceptionNr;
    /// <summary>The exception carries an error code.</summary>
    public byte ExceptionHasErrorCode;
    /// <summary>An exception is pending (with KVM_CAP_EXCEPTION_PAYLOAD).</summary>
    public byte ExceptionPending;
    /// <summary>Exception error code.</summary>
    public uint ExceptionErrorCode;
    /// <summary>An external interrupt is being injected.</summary>
    public byte InterruptInjected;
    /// <summary>Interrupt vector.</summary>
    public byte InterruptNr;
    /// <summary>Software interrupt.</summary>
    public byte InterruptSoft;
    /// <summary>Interrupt shadow (STI or MOV SS blocking).</summary>
    public byte InterruptShadow;
    /// <summary>An NMI is being injected.</summary>
    public byte NmiInjected;
    /// <summary>An NMI is pending.</summary>
    public byte NmiPending;
    /// <summary>NMIs are masked.</summary>
    public byte NmiMasked;
    private byte _nmiPad;
    /// <summary>SIPI vector.</summary>
    public uint SipiVector;
    /// <summary><c>KVM_VCPUEVENT_VALID_*</c> flags saying which fields to apply.</summary>
    public uint Flags;
    /// <summary>SMM state (smm, pending, smm_inside_nmi, latched_init).</summary>
    public uint Smi;
    /// <summary>Triple fault pending.</summary>
    public byte TripleFaultPending;
    private fixed byte _reserved[26];
    /// <summary>The exception has a payload.</summary>
    public byte ExceptionHasPayload;
    /// <summary>Exception payload.</summary>
    public ulong ExceptionPayload;

    /// <summary>Apply <see cref="InterruptShadow"/>.</summary>
    public const uint ValidShadow = 0x4;
    /// <summary>Apply <see cref="NmiPending"/>.</summary>
    public const uint ValidNmiPending = 0x1;
}

/// <summary><c>struct kvm_debugregs</c>: DR0–DR3, DR6 and DR7.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public struct KvmDebugRegs
{
    /// <summary>DR0–DR3.</summary>
    public KvmU64x4 Db;
    /// <summary>DR6.</summary>
    public ulong Dr6;
    /// <summary>DR7.</summary>
    public ulong Dr7;
    /// <summary>Flags.</summary>
    public ulong Flags;
    private Reserved9 _reserved;

    [InlineArray(9)]
    private struct Reserved9
    {
        private ulong _element;
    }
}

/// <summary><c>struct kvm_fpu</c>: the x87 and SSE state.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public struct KvmFpu
{
    /// <summary>ST0–ST7, 16 bytes each.</summary>
    public KvmBytes128 Fpr;
    /// <summary>FPU control word.</summary>
    public ushort Fcw;
    /// <summary>FPU status word.</summary>
    public ushort Fsw;
    /// <summary>Abridged tag word.</summary>
    public byte Ftwx;
    private byte _pad1;
    /// <summary>Last opcode.</summary>
    public ushort LastOpcode;
    /// <summary>Last instruction pointer.</summary>
    public ulong LastIp;
    /// <summary>Last data pointer.</summary>
    public ulong LastDp;
    /// <summary>XMM0–XMM15, 16 bytes each.</summary>
    public KvmBytes256 Xmm;
    /// <summary>MXCSR.</summary>
    public uint Mxcsr;
    private uint _pad2;
}

/// <summary>
/// <c>struct kvm_xsave</c>: the vCPU's XSAVE area, 4 KiB in the standard (non-compacted) layout: the legacy
/// FXSAVE region at 0, the XSAVE header at 512, each further component at the offset CPUID leaf 0xD gives.
/// </summary>
[InlineArray(Size)]
public struct KvmXsave
{
    /// <summary>The size of the area in bytes.</summary>
    public const int Size = 4096;

    private byte _element0;
}

/// <summary><c>struct kvm_xcr</c>: one extended control register.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmXcr
{
    /// <summary>The register's index (0 for XCR0).</summary>
    public uint Index;
    private uint _reserved;
    /// <summary>Its value.</summary>
    public ulong Value;
}

/// <summary>The sixteen <see cref="KvmXcr"/> slots of <see cref="KvmXcrs"/>.</summary>
[InlineArray(16)]
public struct KvmXcrArray
{
    private KvmXcr _element0;
}

/// <summary><c>struct kvm_xcrs</c>: the vCPU's extended control registers.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmXcrs
{
    /// <summary>How many of <see cref="Xcrs"/> are valid.</summary>
    public uint Count;
    /// <summary>Flags (none defined).</summary>
    public uint Flags;
    /// <summary>The registers.</summary>
    public KvmXcrArray Xcrs;
    private XcrPadding _padding;

    [InlineArray(16)]
    private struct XcrPadding
    {
        private ulong _element0;
    }
}

/// <summary><c>struct kvm_cpuid_entry2</c>: one CPUID leaf.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[StructLayout(LayoutKind.Sequential)]
public struct KvmCpuidEntry
{
    /// <summary>Leaf (EAX input).</summary>
    public uint Function;
    /// <summary>Subleaf (ECX input).</summary>
    public uint Index;
    /// <summary>KVM_CPUID_FLAG_* flags.</summary>
    public uint Flags;
    /// <summary>EAX output.</summary>
    public uint Eax;
    /// <summary>EBX output.</summary>
    public uint Ebx;
    /// <summary>ECX output.</summary>
    public uint Ecx;
    /// <summary>EDX output.</summary>
    public uint Edx;
    private uint _pad0;
    private uint _pad1;
    private uint _pad2;

    /// <summary>The leaf depends on the subleaf in ECX.</summary>
    public const uint FlagSignificantIndex = 1;
}

/// <summary><c>struct kvm_msr_entry</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct KvmMsrEntry
{
    public uint Index;
    public uint Reserved;
    public ulong Data;
}

[StructLayout(LayoutKind.Sequential)]
internal struct KvmUserspaceMemoryRegion
{
    public uint Slot;
    public uint Flags;
    public ulong GuestPhysAddr;
    public ulong MemorySize;
    public ulong UserspaceAddr;

    public const uint LogDirtyPages = 0x1;
    public const uint ReadOnly = 0x2;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmEnableCap
{
    public uint Cap;
    public uint Flags;
    public fixed ulong Args[4];
    private fixed byte _pad[64];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmPitConfig
{
    public uint Flags;
    private fixed uint _pad[15];
}

[StructLayout(LayoutKind.Sequential)]
internal struct KvmIrqLevel
{
    public uint Irq;
    public uint Level;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmGuestDebug
{
    public uint Control;
    public uint Pad;
    public fixed ulong DebugReg[8];

    public const uint Enable = 0x1;
    public const uint SingleStep = 0x2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct KvmTranslation
{
    public ulong LinearAddress;
    public ulong PhysicalAddress;
    public byte Valid;
    public byte Writeable;
    public byte Usermode;
    private byte _pad0;
    private uint _pad1;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmMsrFilterRange
{
    public uint Flags;
    public uint Nmsrs;
    public uint Base;
    private uint _pad;
    public byte* Bitmap;

    public const uint Read = 1;
    public const uint Write = 2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct KvmMsrFilter
{
    public const int MaxRanges = 16; // KVM_MSR_FILTER_MAX_RANGES

    public uint Flags;
    private uint _pad;
    public RangeArray Ranges;

    public const uint DefaultAllow = 0;

    [InlineArray(MaxRanges)]
    public struct RangeArray
    {
        private KvmMsrFilterRange _element;
    }
}

/// <summary>Four 64-bit values in place (an interrupt bitmap, DR0–DR3); index it like an array.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[InlineArray(4)]
public struct KvmU64x4
{
    private ulong _element;
}

/// <summary>128 bytes in place (the x87 registers); index it or take it as a span.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[InlineArray(128)]
public struct KvmBytes128
{
    private byte _element;
}

/// <summary>256 bytes in place (the XMM registers); index it or take it as a span.</summary>
/// <remarks>Threading: a plain value, copied on assignment; no thread affinity.</remarks>
[InlineArray(256)]
public struct KvmBytes256
{
    private byte _element;
}
