using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VmmSharp.Interop;

namespace VmmSharp.Kvm;

/// <summary>
/// A KVM vCPU: its file descriptor and its mapped <c>kvm_run</c>, with one method per ioctl.
/// Every method that moves guest state between KVM and the VMM counts itself in <see cref="StateTransfers"/>.
/// </summary>
/// <remarks>
/// Threading: the state and run ioctls belong to the thread that runs the vCPU (KVM serializes them, but state read
/// from another thread while the vCPU runs is meaningless); <see cref="Id"/>, <see cref="Vm"/> and
/// <see cref="StateTransfers"/> may be read from any thread, and <see cref="Dispose"/> may be called from any thread.
/// After <see cref="Dispose"/> every ioctl throws <see cref="ObjectDisposedException"/>; the descriptor and the
/// <c>kvm_run</c> mapping stay alive until a thread still inside <c>KVM_RUN</c> or a dispatcher loop has left it.
/// </remarks>
public sealed unsafe partial class KvmVcpu : IDisposable
{
    private readonly SafeFileDescriptor _fd;
    private readonly SafeMapping _run;
    private long _stateTransfers;

    internal KvmVcpu(KvmVm vm, int id, SafeFileDescriptor fd, SafeMapping run)
    {
        Vm = vm;
        Id = id;
        _fd = fd;
        _run = run;
        Run = (KvmRun*)run.Address;
    }

    /// <summary>The VM this vCPU belongs to.</summary>
    public KvmVm Vm { get; }

    /// <summary>The vCPU id given at creation (its initial APIC id).</summary>
    public int Id { get; }

    /// <summary>How many state ioctls (KVM_GET_*/KVM_SET_* of registers, MSRs, FPU, events) this vCPU has made.</summary>
    public long StateTransfers => Volatile.Read(ref _stateTransfers);

    /// <summary>The state parts KVM copies into <c>kvm_run</c> on every exit (<c>kvm_valid_regs</c>): 1 regs, 2 sregs, 4 events.</summary>
    public ulong SyncRequest
    {
        get
        {
            KvmRun* run = AcquireRun();
            try
            {
                return run->ValidRegs;
            }
            finally
            {
                ReleaseRun();
            }
        }
    }

    /// <summary>The <c>kvm_run</c> mapping; dereference it only between <see cref="AcquireRun"/> and <see cref="ReleaseRun"/>.</summary>
    internal KvmRun* Run { get; }

    /// <summary>
    /// Keeps the <c>kvm_run</c> mapping alive (a dispose meanwhile defers the unmap) until <see cref="ReleaseRun"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The vCPU has been disposed.</exception>
    internal KvmRun* AcquireRun()
    {
        bool added = false;
        try
        {
            _run.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
            throw new ObjectDisposedException($"vCPU {Id}", "the vCPU has been disposed");
        }
        return Run;
    }

    /// <summary>Whether <see cref="Dispose"/> has been called.</summary>
    internal bool IsDisposed => _fd.IsClosed;

    /// <summary>Ends what <see cref="AcquireRun"/> began.</summary>
    internal void ReleaseRun() => _run.DangerousRelease();

    /// <summary>
    /// Sets <c>immediate_exit</c>, so the next (or a starting) <c>KVM_RUN</c> returns at once. Any thread; returns false,
    /// touching nothing, once the vCPU has been disposed.
    /// </summary>
    internal bool RequestImmediateExit()
    {
        bool added = false;
        try
        {
            _run.DangerousAddRef(ref added);
            Volatile.Write(ref Run->ImmediateExit, 1);
            return true;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added)
            {
                _run.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Why the last <see cref="EnterGuest"/> returned, copied out of <c>kvm_run</c>. For code that runs this vCPU
    /// itself; read it on the thread that runs the vCPU, before the next <see cref="EnterGuest"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The vCPU has been disposed.</exception>
    public KvmExit LastExit
    {
        get
        {
            KvmRun* run = AcquireRun();
            try
            {
                return KvmExit.From(run);
            }
            finally
            {
                ReleaseRun();
            }
        }
    }

    /// <summary>
    /// Enters the guest once (<c>KVM_RUN</c>) and returns when it exits: 0, with the reason in <see cref="LastExit"/>,
    /// or the errno (<c>EINTR</c> when interrupted). Never allocates; throws only once disposed. For code that runs the vCPU
    /// itself (a bare loop); a vCPU that a <c>VcpuDispatcher</c> runs must be entered only by it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int EnterGuest()
    {
        if (Libc.Ioctl(_fd, KvmIoctl.Run, 0) == 0)
        {
            return 0;
        }
        return Marshal.GetLastPInvokeError();
    }

    /// <summary>Reads the general-purpose registers (<c>KVM_GET_REGS</c>).</summary>
    public void GetRegs(out KvmRegs regs)
    {
        if (PendingOnEntry(KvmRun.SyncX86Regs))
        {
            regs = Run->SyncRegs; // written for the next KVM_RUN (SetRegsOnEntry): that is the vCPU's state now
            return;
        }
        fixed (KvmRegs* p = &regs)
        {
            StateIoctl(KvmIoctl.GetRegs, p);
        }
    }

    /// <summary>Writes the general-purpose registers (<c>KVM_SET_REGS</c>).</summary>
    public void SetRegs(in KvmRegs regs)
    {
        fixed (KvmRegs* p = &regs)
        {
            StateIoctl(KvmIoctl.SetRegs, p);
        }
        DropOnEntry(KvmRun.SyncX86Regs); // newer than what waits in the sync area
    }

    /// <summary>Reads the segment and control registers (<c>KVM_GET_SREGS</c>).</summary>
    public void GetSregs(out KvmSregs sregs)
    {
        fixed (KvmSregs* p = &sregs)
        {
            StateIoctl(KvmIoctl.GetSregs, p);
        }
    }

    /// <summary>Writes the segment and control registers (<c>KVM_SET_SREGS</c>).</summary>
    public void SetSregs(in KvmSregs sregs)
    {
        fixed (KvmSregs* p = &sregs)
        {
            StateIoctl(KvmIoctl.SetSregs, p);
        }
    }

    /// <summary>Reads pending events (<c>KVM_GET_VCPU_EVENTS</c>).</summary>
    public void GetEvents(out KvmVcpuEvents events)
    {
        if (PendingOnEntry(KvmRun.SyncX86Events))
        {
            events = Run->SyncEvents;
            events.Flags &= ~SetOnlyEventFlags; // as KVM_GET_VCPU_EVENTS reports them: it never sets these
            return;
        }
        fixed (KvmVcpuEvents* p = &events)
        {
            StateIoctl(KvmIoctl.GetVcpuEvents, p);
        }
    }

    /// <summary>Writes pending events (<c>KVM_SET_VCPU_EVENTS</c>).</summary>
    public void SetEvents(in KvmVcpuEvents events)
    {
        fixed (KvmVcpuEvents* p = &events)
        {
            StateIoctl(KvmIoctl.SetVcpuEvents, p);
        }
        DropOnEntry(KvmRun.SyncX86Events);
    }

    /// <summary>
    /// Whether KVM can take registers and events from <c>kvm_run</c>'s sync area on the next <c>KVM_RUN</c>
    /// (<c>KVM_CAP_SYNC_REGS</c> with both), so that <see cref="SetRegsOnEntry"/> and <see cref="SetEventsOnEntry"/> work.
    /// </summary>
    internal bool CanSetOnEntry => (Vm.StableExtension(KvmCapability.SyncRegs) & (int)(KvmRun.SyncX86Regs | KvmRun.SyncX86Events))
        == (int)(KvmRun.SyncX86Regs | KvmRun.SyncX86Events);

    /// <summary>
    /// Sets the general-purpose registers without an ioctl: KVM takes them from the sync area when the vCPU next enters
    /// <c>KVM_RUN</c>, before anything else, as if by <c>KVM_SET_REGS</c> then. <see cref="GetRegs"/> reads them back
    /// meanwhile and <see cref="SetRegs"/> replaces them. Only while the vCPU is not running, and never for a vCPU in
    /// <c>KVM_MP_STATE_UNINITIALIZED</c> (KVM_RUN waits for its SIPI without looking at the sync area, and would apply
    /// them after it). Needs <see cref="CanSetOnEntry"/>.
    /// </summary>
    internal void SetRegsOnEntry(in KvmRegs regs)
    {
        KvmRun* run = AcquireRun();
        try
        {
            run->SyncRegs = regs;
            run->DirtyRegs |= KvmRun.SyncX86Regs;
        }
        finally
        {
            ReleaseRun();
        }
    }

    /// <summary>Like <see cref="SetRegsOnEntry"/>, for the pending events (<c>KVM_SET_VCPU_EVENTS</c> on the next entry, after the registers).</summary>
    internal void SetEventsOnEntry(in KvmVcpuEvents events)
    {
        KvmRun* run = AcquireRun();
        try
        {
            run->SyncEvents = events;
            run->DirtyRegs |= KvmRun.SyncX86Events;
        }
        finally
        {
            ReleaseRun();
        }
    }

    // KVM_VCPUEVENT_VALID_SIPI_VECTOR: a flag only KVM_SET_VCPU_EVENTS reads (GET reports NMI_PENDING, SHADOW, SMM).
    private const uint SetOnlyEventFlags = 0x2;

    private bool PendingOnEntry(ulong part)
    {
        KvmRun* run = AcquireRun();
        try
        {
            return (run->DirtyRegs & part) != 0;
        }
        finally
        {
            ReleaseRun();
        }
    }

    private void DropOnEntry(ulong part)
    {
        KvmRun* run = AcquireRun();
        try
        {
            run->DirtyRegs &= ~part;
        }
        finally
        {
            ReleaseRun();
        }
    }

    /// <summary>Reads the debug registers (<c>KVM_GET_DEBUGREGS</c>).</summary>
    public void GetDebugRegs(out KvmDebugRegs regs)
    {
        fixed (KvmDebugRegs* p = &regs)
        {
            StateIoctl(KvmIoctl.GetDebugRegs, p);
        }
    }

    /// <summary>Writes the debug registers (<c>KVM_SET_DEBUGREGS</c>).</summary>
    public void SetDebugRegs(in KvmDebugRegs regs)
    {
        fixed (KvmDebugRegs* p = &regs)
        {
            StateIoctl(KvmIoctl.SetDebugRegs, p);
        }
    }

    /// <summary>Reads the x87/SSE state (<c>KVM_GET_FPU</c>).</summary>
    public void GetFpu(out KvmFpu fpu)
    {
        fixed (KvmFpu* p = &fpu)
        {
            StateIoctl(KvmIoctl.GetFpu, p);
        }
    }

    /// <summary>Writes the x87/SSE state (<c>KVM_SET_FPU</c>).</summary>
    public void SetFpu(in KvmFpu fpu)
    {
        fixed (KvmFpu* p = &fpu)
        {
            StateIoctl(KvmIoctl.SetFpu, p);
        }
    }

    /// <summary>Reads the XSAVE state, in the standard (non-compacted) XSAVE layout (<c>KVM_GET_XSAVE</c>).</summary>
    public void GetXsave(out KvmXsave xsave)
    {
        fixed (KvmXsave* p = &xsave)
        {
            StateIoctl(KvmIoctl.GetXsave, p);
        }
    }

    /// <summary>Writes the XSAVE state, in the standard (non-compacted) XSAVE layout (<c>KVM_SET_XSAVE</c>).</summary>
    public void SetXsave(in KvmXsave xsave)
    {
        fixed (KvmXsave* p = &xsave)
        {
            StateIoctl(KvmIoctl.SetXsave, p);
        }
    }

    /// <summary>Reads the extended control registers (<c>KVM_GET_XCRS</c>).</summary>
    public void GetXcrs(out KvmXcrs xcrs)
    {
        fixed (KvmXcrs* p = &xcrs)
        {
            StateIoctl(KvmIoctl.GetXcrs, p);
        }
    }

    /// <summary>Writes the extended control registers (<c>KVM_SET_XCRS</c>).</summary>
    public void SetXcrs(in KvmXcrs xcrs)
    {
        fixed (KvmXcrs* p = &xcrs)
        {
            StateIoctl(KvmIoctl.SetXcrs, p);
        }
    }

    /// <summary>Reads the MSRs named in <paramref name="indices"/> into <paramref name="values"/> (<c>KVM_GET_MSRS</c>).</summary>
    public void GetMsrs(ReadOnlySpan<uint> indices, Span<ulong> values)
    {
        const int max = 8;
        if (indices.Length > max || values.Length < indices.Length)
        {
            throw new ArgumentException($"at most {max} MSRs per call, and room for each value", nameof(indices));
        }
        MsrBuffer buffer = default;
        buffer.Count = (uint)indices.Length;
        KvmMsrEntry* entries = (KvmMsrEntry*)buffer.Entries;
        for (int i = 0; i < indices.Length; i++)
        {
            entries[i].Index = indices[i];
        }
        int n = Libc.Ioctl(_fd, KvmIoctl.GetMsrs, &buffer);
        _stateTransfers++;
        if (n != indices.Length)
        {
            throw MsrError(KvmIoctl.GetMsrs, n, indices, entries);
        }
        for (int i = 0; i < indices.Length; i++)
        {
            values[i] = entries[i].Data;
        }
    }

    /// <summary>Writes the MSRs named in <paramref name="indices"/> (<c>KVM_SET_MSRS</c>).</summary>
    public void SetMsrs(ReadOnlySpan<uint> indices, ReadOnlySpan<ulong> values)
    {
        const int max = 8;
        if (indices.Length > max || values.Length < indices.Length)
        {
            throw new ArgumentException($"at most {max} MSRs per call, and a value for each", nameof(indices));
        }
        MsrBuffer buffer = default;
        buffer.Count = (uint)indices.Length;
        KvmMsrEntry* entries = (KvmMsrEntry*)buffer.Entries;
        for (int i = 0; i < indices.Length; i++)
        {
            entries[i].Index = indices[i];
            entries[i].Data = values[i];
        }
        int n = Libc.Ioctl(_fd, KvmIoctl.SetMsrs, &buffer);
        _stateTransfers++;
        if (n != indices.Length)
        {
            throw MsrError(KvmIoctl.SetMsrs, n, indices, entries);
        }
    }

    /// <summary>Reads one MSR as the host (<c>KVM_GET_MSRS</c>, which no MSR filter applies to); false where KVM refuses.</summary>
    internal bool TryGetMsr(uint index, out ulong value)
    {
        MsrBuffer buffer = default;
        buffer.Count = 1;
        KvmMsrEntry* entry = (KvmMsrEntry*)buffer.Entries;
        entry->Index = index;
        _stateTransfers++;
        bool ok = Libc.Ioctl(_fd, KvmIoctl.GetMsrs, &buffer) == 1;
        value = ok ? entry->Data : 0;
        return ok;
    }

    /// <summary>Writes one MSR as the host (<c>KVM_SET_MSRS</c>); false where KVM refuses the value.</summary>
    internal bool TrySetMsr(uint index, ulong value)
    {
        MsrBuffer buffer = default;
        buffer.Count = 1;
        KvmMsrEntry* entry = (KvmMsrEntry*)buffer.Entries;
        entry->Index = index;
        entry->Data = value;
        _stateTransfers++;
        return Libc.Ioctl(_fd, KvmIoctl.SetMsrs, &buffer) == 1;
    }

    /// <summary>Sets the CPUID leaves the guest sees (<c>KVM_SET_CPUID2</c>).</summary>
    public void SetCpuid(ReadOnlySpan<KvmCpuidEntry> entries)
    {
        int bytes = 8 + (entries.Length * sizeof(KvmCpuidEntry));
        byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
        try
        {
            *(uint*)buffer = (uint)entries.Length;
            entries.CopyTo(new Span<KvmCpuidEntry>(buffer + 8, entries.Length));
            Check(Libc.Ioctl(_fd, KvmIoctl.SetCpuid2, buffer), KvmIoctl.SetCpuid2, $"vcpu {Id}, nent={entries.Length}");
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    /// <summary>
    /// Sets the signal mask in force while the guest runs (<c>KVM_SET_SIGNAL_MASK</c>), so that a signal
    /// blocked in the thread can still interrupt <c>KVM_RUN</c>.
    /// </summary>
    internal void SetSignalMask(ulong kernelMask)
    {
        SignalMask mask = default;
        mask.Length = 8;
        mask.Bits = kernelMask;
        Check(Libc.Ioctl(_fd, KvmIoctl.SetSignalMask, &mask), KvmIoctl.SetSignalMask, $"vcpu {Id}, mask=0x{kernelMask:x}");
    }

    /// <summary>Turns single-stepping on or off (<c>KVM_SET_GUEST_DEBUG</c>): each step then exits as a debug event.</summary>
    public void SetSingleStep(bool enable)
    {
        var debug = new KvmGuestDebug { Control = enable ? KvmGuestDebug.Enable | KvmGuestDebug.SingleStep : 0 };
        Check(Libc.Ioctl(_fd, KvmIoctl.SetGuestDebug, &debug), KvmIoctl.SetGuestDebug, $"vcpu {Id}, control=0x{debug.Control:x}");
    }

    /// <summary>Queues an external interrupt; only without the in-kernel irqchip (<c>KVM_INTERRUPT</c>).</summary>
    public void Interrupt(byte vector)
    {
        uint irq = vector;
        Check(Libc.Ioctl(_fd, KvmIoctl.Interrupt, &irq), KvmIoctl.Interrupt, $"vcpu {Id}, vector={vector}");
    }

    /// <summary>Translates a guest linear address with the vCPU's current paging (<c>KVM_TRANSLATE</c>); null if unmapped.</summary>
    public ulong? Translate(ulong linearAddress)
    {
        var t = new KvmTranslation { LinearAddress = linearAddress };
        if (Libc.Ioctl(_fd, KvmIoctl.Translate, &t) < 0 || t.Valid == 0)
        {
            return null;
        }
        return t.PhysicalAddress;
    }

    /// <summary>Reads the multiprocessing state (<c>KVM_GET_MP_STATE</c>): 0 runnable, 1 uninitialized, 2 INIT received, 3 halted, 4 SIPI received.</summary>
    public uint GetMpState()
    {
        uint state;
        Check(Libc.Ioctl(_fd, KvmIoctl.GetMpState, &state), KvmIoctl.GetMpState, $"vcpu {Id}");
        return state;
    }

    /// <summary>Sets the multiprocessing state (<c>KVM_SET_MP_STATE</c>).</summary>
    public void SetMpState(uint state)
        => Check(Libc.Ioctl(_fd, KvmIoctl.SetMpState, &state), KvmIoctl.SetMpState, $"vcpu {Id}, mp_state={state}");

    /// <summary>
    /// KVM's own counters for this vCPU (<c>KVM_GET_STATS_FD</c>): its exits by kind, instructions its emulator ran
    /// (<c>insn_emulation</c>), halts, page faults. Empty where the kernel has no binary statistics. Any thread; a few
    /// system calls, so not for the exit path.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The vCPU has been disposed.</exception>
    public IReadOnlyDictionary<string, long> ReadStatistics()
        => Vm.System.Has(KvmCapability.BinaryStatsFd) ? KvmStatistics.Read(_fd) : new Dictionary<string, long>();

    /// <summary>Closes the vCPU; see the remarks for a vCPU that is still running. Any thread.</summary>
    public void Dispose()
    {
        _run.Dispose();
        _fd.Dispose();
    }

    private void StateIoctl(uint request, void* arg)
    {
        _stateTransfers++;
        Check(Libc.Ioctl(_fd, request, arg), request, null);
    }

    private void Check(int result, uint request, string? detail)
    {
        if (result < 0)
        {
            throw new KvmException(request, Marshal.GetLastPInvokeError(), detail ?? $"vcpu {Id}");
        }
    }

    private KvmException MsrError(uint request, int n, ReadOnlySpan<uint> indices, KvmMsrEntry* entries)
    {
        if (n < 0)
        {
            return new KvmException(request, Marshal.GetLastPInvokeError(), $"vcpu {Id}");
        }
        return new KvmException($"{KvmIoctl.Name(request)} on vcpu {Id} stopped at MSR 0x{indices[n]:x} ({n} of {indices.Length} done)");
    }

    // struct kvm_signal_mask { __u32 len; __u8 sigset[]; }: the set starts at offset 4.
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct SignalMask
    {
        public uint Length;
        public ulong Bits;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsrBuffer
    {
        public uint Count;
        public uint Pad;
        public fixed byte Entries[8 * 16];
    }
}
