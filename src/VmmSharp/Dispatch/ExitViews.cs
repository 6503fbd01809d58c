using VmmSharp.Kvm;

namespace VmmSharp.Dispatch;

/// <summary>A port-I/O exit, read and answered in place in <c>kvm_run</c>.</summary>
/// <remarks>Threading: valid only inside the handler that got it, on the vCPU's dispatcher thread (a ref struct cannot outlive it).</remarks>
public readonly unsafe ref struct IoExit
{
    private readonly KvmRun* _run;

    internal IoExit(KvmRun* run) => _run = run;

    /// <summary>The port.</summary>
    public ushort Port => _run->IoPort;

    /// <summary>The access size in bytes: 1, 2 or 4.</summary>
    public int Size => _run->IoSize;

    /// <summary>Whether the guest wrote (OUT/OUTS) rather than read (IN/INS).</summary>
    public bool IsWrite => _run->IoDirection == 1;

    /// <summary>How many accesses a string instruction (REP INS/OUTS) made; 1 otherwise.</summary>
    public int Count => (int)_run->IoCount;

    /// <summary>The data: <see cref="Size"/> × <see cref="Count"/> bytes; fill it for a read.</summary>
    public Span<byte> Data => new((byte*)_run + _run->IoDataOffset, _run->IoSize * (int)_run->IoCount);

    /// <summary>The first (usually only) value, zero-extended; setting it answers a read of <see cref="Size"/> bytes.</summary>
    public uint Value
    {
        get
        {
            byte* p = (byte*)_run + _run->IoDataOffset;
            return _run->IoSize switch { 1 => *p, 2 => *(ushort*)p, _ => *(uint*)p };
        }

        set
        {
            byte* p = (byte*)_run + _run->IoDataOffset;
            switch (_run->IoSize)
            {
                case 1: *p = (byte)value; break;
                case 2: *(ushort*)p = (ushort)value; break;
                default: *(uint*)p = value; break;
            }
        }
    }
}

/// <summary>An MMIO exit, read and answered in place in <c>kvm_run</c>.</summary>
/// <remarks>Threading: valid only inside the handler that got it, on the vCPU's dispatcher thread (a ref struct cannot outlive it).</remarks>
public readonly unsafe ref struct MmioExit
{
    private readonly KvmRun* _run;

    internal MmioExit(KvmRun* run) => _run = run;

    /// <summary>The guest-physical address.</summary>
    public ulong Address => _run->MmioPhysAddr;

    /// <summary>The access length in bytes (1 to 8).</summary>
    public int Length => (int)Math.Min(_run->MmioLen, 8u);

    /// <summary>Whether the guest wrote.</summary>
    public bool IsWrite => _run->MmioIsWrite != 0;

    /// <summary>The data; fill it for a read.</summary>
    public Span<byte> Data => new(_run->MmioData, Length);

    /// <summary>The data as a little-endian value; setting it answers a read.</summary>
    public ulong Value
    {
        get
        {
            ulong v = 0;
            Data.CopyTo(new Span<byte>(&v, 8));
            return v;
        }

        set => new ReadOnlySpan<byte>(&value, 8)[..Length].CopyTo(Data);
    }
}

/// <summary>An RDMSR or WRMSR exit, answered in place in <c>kvm_run</c>.</summary>
/// <remarks>Threading: valid only inside the handler that got it, on the vCPU's dispatcher thread (a ref struct cannot outlive it).</remarks>
public readonly unsafe ref struct MsrExit
{
    private readonly KvmRun* _run;

    internal MsrExit(KvmRun* run) => _run = run;

    /// <summary>The MSR index (ECX).</summary>
    public uint Index => _run->MsrIndex;

    /// <summary>Why it came to user space: 1 invalid, 2 unknown to KVM, 4 filtered.</summary>
    public uint Reason => _run->MsrReason;

    /// <summary>The value written, or the value to return for a read.</summary>
    public ulong Value
    {
        get => _run->MsrData;
        set => _run->MsrData = value;
    }

    /// <summary>Set to make the instruction raise #GP in the guest.</summary>
    public bool Fault
    {
        get => _run->MsrError != 0;
        set => _run->MsrError = value ? (byte)1 : (byte)0;
    }
}

/// <summary>A single-step or breakpoint exit.</summary>
/// <remarks>Threading: valid only inside the handler that got it, on the vCPU's dispatcher thread (a ref struct cannot outlive it).</remarks>
public readonly unsafe ref struct DebugExit
{
    private readonly KvmRun* _run;

    internal DebugExit(KvmRun* run) => _run = run;

    /// <summary>The exception vector (1 for #DB, 3 for #BP).</summary>
    public uint Exception => _run->DebugException;

    /// <summary>The guest's program counter.</summary>
    public ulong Pc => _run->DebugPc;

    /// <summary>DR6.</summary>
    public ulong Dr6 => _run->DebugDr6;

    /// <summary>DR7.</summary>
    public ulong Dr7 => _run->DebugDr7;
}

/// <summary>An internal-error exit; for an emulation failure, with the instruction KVM could not emulate.</summary>
/// <remarks>Threading: valid only inside the handler that got it, on the vCPU's dispatcher thread (a ref struct cannot outlive it).</remarks>
public readonly unsafe ref struct InternalErrorExit
{
    private readonly KvmRun* _run;

    internal InternalErrorExit(KvmRun* run) => _run = run;

    /// <summary>KVM's suberror: 1 emulation failure, 2 double fault during event delivery, 3 delivery failure, 4 unexpected exit.</summary>
    public uint Suberror => _run->InternalSuberror;

    /// <summary>The data words KVM attached.</summary>
    public ReadOnlySpan<ulong> Data => new(_run->InternalData, (int)Math.Min(_run->InternalNdata, 16u));

    /// <summary>The bytes of the instruction that could not be emulated, where KVM reports them; else empty.</summary>
    public ReadOnlySpan<byte> InstructionBytes
        => _run->InternalSuberror == 1 && _run->InternalNdata >= 2 && (_run->EmulationFlags & 1) != 0
            ? new ReadOnlySpan<byte>(_run->EmulationInsnBytes, Math.Min((int)_run->EmulationInsnSize, 15))
            : default;
}

/// <summary>A system-event exit.</summary>
/// <remarks>Threading: valid only inside the handler that got it, on the vCPU's dispatcher thread (a ref struct cannot outlive it).</remarks>
public readonly unsafe ref struct SystemEventExit
{
    private readonly KvmRun* _run;

    internal SystemEventExit(KvmRun* run) => _run = run;

    /// <summary>The event type: 1 shutdown, 2 reset, 3 crash, …</summary>
    public uint Type => _run->SystemEventType;

    /// <summary>The data words KVM attached.</summary>
    public ReadOnlySpan<ulong> Data => new(_run->SystemEventData, (int)Math.Min(_run->SystemEventNdata, 16u));
}

/// <summary>A failed VM entry.</summary>
/// <remarks>Threading: valid only inside the handler that got it, on the vCPU's dispatcher thread (a ref struct cannot outlive it).</remarks>
public readonly unsafe ref struct EntryFailureExit
{
    private readonly KvmRun* _run;

    internal EntryFailureExit(KvmRun* run) => _run = run;

    /// <summary>The hardware's entry-failure reason.</summary>
    public ulong HardwareReason => _run->FailEntryReason;

    /// <summary>The host CPU it happened on.</summary>
    public uint Cpu => _run->FailEntryCpu;
}
