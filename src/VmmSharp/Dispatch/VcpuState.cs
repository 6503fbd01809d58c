using System.Runtime.CompilerServices;
using VmmSharp.Kvm;

namespace VmmSharp.Dispatch;

/// <summary>
/// What a handler sees of its vCPU while the guest waits: the seed's UTCB. It shows exactly the groups
/// of guest state the handler's <see cref="Mtd"/> names (touching another group throws), records which
/// groups the handler changed, and on reply the dispatcher writes back only those. Groups that KVM's
/// sync-regs area covers (registers, segments, control registers, events) are read and written in place
/// in <c>kvm_run</c>; the others through their own ioctls, and only when named.
/// Threading: only the vCPU's own dispatcher thread may use it, and only inside a handler.
/// </summary>
/// <remarks>
/// <para>
/// Port I/O, MMIO and MSR exits arrive before the instruction is done: KVM completes it (stores the data of a read,
/// moves RIP past the instruction) when the vCPU next enters the guest, that is, after the reply. What RIP reads
/// at such an exit therefore depends on the host and the instruction (KVM's <c>x86.c</c>): on VMX and SVM an
/// <c>in</c> or <c>out</c> exits with RIP still at the instruction (<c>complete_fast_pio_*</c> advances it later); an
/// access KVM's instruction emulator made (string I/O, MMIO, and every access on PVM at CPL0) has RIP past the
/// instruction for writes (<c>out</c>, MMIO writes), and at it for reads (<c>in</c>, MMIO reads), whose data is still to
/// come; on PVM an <c>out</c> has RIP past it and an <c>in</c> at it, at CPL3 and CPL0 alike. A handler that needs the same answer on every host calls
/// <see cref="CompleteInstruction"/> first (after filling in a read's data): from then on RIP is past the instruction
/// and the state is the one after it, everywhere, and may be changed freely.
/// </para>
/// </remarks>
public sealed unsafe class VcpuState
{
    internal const Mtd RegsGroups = Mtd.Acdb | Mtd.Bsd | Mtd.Rsp | Mtd.Rip | Mtd.Rflags | Mtd.R8R15;
    internal const Mtd SregsGroups = Mtd.DsEs | Mtd.FsGs | Mtd.CsSs | Mtd.Tr | Mtd.Ldtr | Mtd.Gdtr | Mtd.Idtr | Mtd.Cr | Mtd.Efer;
    internal const Mtd EventsGroups = Mtd.Inj | Mtd.Sta;
    internal const Mtd MsrGroups = Mtd.Sysenter | Mtd.SyscallSwapgs | Mtd.Tsc;

    private const uint MsrSysenterCs = 0x174, MsrSysenterEsp = 0x175, MsrSysenterEip = 0x176;
    private const uint MsrStar = 0xc0000081, MsrLstar = 0xc0000082, MsrCstar = 0xc0000083, MsrFmask = 0xc0000084;
    private const uint MsrKernelGsBase = 0xc0000102, MsrTsc = 0x10;

    private readonly VcpuDispatcher _dispatcher;
    private readonly KvmVcpu _vcpu;
    private readonly KvmRun* _run;
    private readonly bool _syncRegs;
    private Mtd _mtd;
    private Mtd _changed;
    private ulong _fresh;
    private int _pendingInterrupt = -1;
    private bool _completed;
    private KvmDebugRegs _debugRegs;
    private KvmFpu _fpu;
    private ulong _sysenterCs, _sysenterEsp, _sysenterEip, _star, _lstar, _cstar, _fmask, _kernelGsBase, _tsc;

    internal VcpuState(VcpuDispatcher dispatcher, KvmVcpu vcpu, bool syncRegs)
    {
        _dispatcher = dispatcher;
        _vcpu = vcpu;
        _run = vcpu.Run;
        _syncRegs = syncRegs;
    }

    /// <summary>The vCPU.</summary>
    public KvmVcpu Vcpu => _vcpu;

    /// <summary>The vCPU's identity.</summary>
    public VcpuId Id => new(_vcpu.Id);

    /// <summary>The event being handled.</summary>
    public VcpuEvent Event { get; private set; }

    /// <summary>The groups the current handler sees.</summary>
    public Mtd Mtd => _mtd;

    /// <summary>The groups the current handler has changed so far.</summary>
    public Mtd Changed => _changed;

    /// <summary>How many groups were written back through the sync-regs area (no ioctl) so far.</summary>
    public long SyncWritebacks { get; private set; }

    internal bool BlockRequested { get; set; }

    internal VcpuRunResult? StopResult { get; set; }

    /// <summary>Whether the current handler injected an interrupt, exception or NMI.</summary>
    internal bool Injected { get; private set; }

    // ---- General-purpose registers (kvm_regs) ----

    /// <summary>RAX (group <see cref="Mtd.Acdb"/>).</summary>
    public ulong Rax { get => Regs(Mtd.Acdb).Rax; set => RegsW(Mtd.Acdb).Rax = value; }

    /// <summary>RBX (group <see cref="Mtd.Acdb"/>).</summary>
    public ulong Rbx { get => Regs(Mtd.Acdb).Rbx; set => RegsW(Mtd.Acdb).Rbx = value; }

    /// <summary>RCX (group <see cref="Mtd.Acdb"/>).</summary>
    public ulong Rcx { get => Regs(Mtd.Acdb).Rcx; set => RegsW(Mtd.Acdb).Rcx = value; }

    /// <summary>RDX (group <see cref="Mtd.Acdb"/>).</summary>
    public ulong Rdx { get => Regs(Mtd.Acdb).Rdx; set => RegsW(Mtd.Acdb).Rdx = value; }

    /// <summary>RBP (group <see cref="Mtd.Bsd"/>).</summary>
    public ulong Rbp { get => Regs(Mtd.Bsd).Rbp; set => RegsW(Mtd.Bsd).Rbp = value; }

    /// <summary>RSI (group <see cref="Mtd.Bsd"/>).</summary>
    public ulong Rsi { get => Regs(Mtd.Bsd).Rsi; set => RegsW(Mtd.Bsd).Rsi = value; }

    /// <summary>RDI (group <see cref="Mtd.Bsd"/>).</summary>
    public ulong Rdi { get => Regs(Mtd.Bsd).Rdi; set => RegsW(Mtd.Bsd).Rdi = value; }

    /// <summary>RSP (group <see cref="Mtd.Rsp"/>).</summary>
    public ulong Rsp { get => Regs(Mtd.Rsp).Rsp; set => RegsW(Mtd.Rsp).Rsp = value; }

    /// <summary>RIP (group <see cref="Mtd.Rip"/>).</summary>
    public ulong Rip { get => Regs(Mtd.Rip).Rip; set => RegsW(Mtd.Rip).Rip = value; }

    /// <summary>RFLAGS (group <see cref="Mtd.Rflags"/>).</summary>
    public ulong Rflags { get => Regs(Mtd.Rflags).Rflags; set => RegsW(Mtd.Rflags).Rflags = value; }

    /// <summary>R8 (group <see cref="Mtd.R8R15"/>).</summary>
    public ulong R8 { get => Regs(Mtd.R8R15).R8; set => RegsW(Mtd.R8R15).R8 = value; }

    /// <summary>R9 (group <see cref="Mtd.R8R15"/>).</summary>
    public ulong R9 { get => Regs(Mtd.R8R15).R9; set => RegsW(Mtd.R8R15).R9 = value; }

    /// <summary>R10 (group <see cref="Mtd.R8R15"/>).</summary>
    public ulong R10 { get => Regs(Mtd.R8R15).R10; set => RegsW(Mtd.R8R15).R10 = value; }

    /// <summary>R11 (group <see cref="Mtd.R8R15"/>).</summary>
    public ulong R11 { get => Regs(Mtd.R8R15).R11; set => RegsW(Mtd.R8R15).R11 = value; }

    /// <summary>R12 (group <see cref="Mtd.R8R15"/>).</summary>
    public ulong R12 { get => Regs(Mtd.R8R15).R12; set => RegsW(Mtd.R8R15).R12 = value; }

    /// <summary>R13 (group <see cref="Mtd.R8R15"/>).</summary>
    public ulong R13 { get => Regs(Mtd.R8R15).R13; set => RegsW(Mtd.R8R15).R13 = value; }

    /// <summary>R14 (group <see cref="Mtd.R8R15"/>).</summary>
    public ulong R14 { get => Regs(Mtd.R8R15).R14; set => RegsW(Mtd.R8R15).R14 = value; }

    /// <summary>R15 (group <see cref="Mtd.R8R15"/>).</summary>
    public ulong R15 { get => Regs(Mtd.R8R15).R15; set => RegsW(Mtd.R8R15).R15 = value; }

    /// <summary>Sets every general-purpose register, RIP and RFLAGS at once (all of <see cref="Mtd.Gpr"/>).</summary>
    public void SetRegisters(in KvmRegs regs)
    {
        CheckAll(Mtd.Gpr);
        _run->SyncRegs = regs;
        _changed |= Mtd.Gpr;
    }

    /// <summary>
    /// Sets every segment and descriptor-table register, CR0–CR4, CR8 and EFER at once (the groups
    /// <see cref="Mtd.Segments"/>, <see cref="Mtd.Cr"/> and <see cref="Mtd.Efer"/>). The APIC base and pending
    /// interrupts in <paramref name="sregs"/> are ignored: the vCPU keeps its own.
    /// </summary>
    public void SetSystemRegisters(in KvmSregs sregs)
    {
        CheckAll(SregsGroups);
        ref KvmSregs target = ref _run->SyncSregs;
        KvmSregs kept = target;
        target = sregs;
        target.ApicBase = kept.ApicBase;
        for (int i = 0; i < 4; i++)
        {
            target.InterruptBitmap[i] = kept.InterruptBitmap[i];
        }
        _changed |= SregsGroups;
    }

    // ---- Segments, descriptor tables, control registers (kvm_sregs) ----

    /// <summary>CS (group <see cref="Mtd.CsSs"/>).</summary>
    public KvmSegment Cs { get => Sregs(Mtd.CsSs).Cs; set => SregsW(Mtd.CsSs).Cs = value; }

    /// <summary>SS (group <see cref="Mtd.CsSs"/>).</summary>
    public KvmSegment Ss { get => Sregs(Mtd.CsSs).Ss; set => SregsW(Mtd.CsSs).Ss = value; }

    /// <summary>DS (group <see cref="Mtd.DsEs"/>).</summary>
    public KvmSegment Ds { get => Sregs(Mtd.DsEs).Ds; set => SregsW(Mtd.DsEs).Ds = value; }

    /// <summary>ES (group <see cref="Mtd.DsEs"/>).</summary>
    public KvmSegment Es { get => Sregs(Mtd.DsEs).Es; set => SregsW(Mtd.DsEs).Es = value; }

    /// <summary>FS (group <see cref="Mtd.FsGs"/>).</summary>
    public KvmSegment Fs { get => Sregs(Mtd.FsGs).Fs; set => SregsW(Mtd.FsGs).Fs = value; }

    /// <summary>GS (group <see cref="Mtd.FsGs"/>).</summary>
    public KvmSegment Gs { get => Sregs(Mtd.FsGs).Gs; set => SregsW(Mtd.FsGs).Gs = value; }

    /// <summary>TR (group <see cref="Mtd.Tr"/>).</summary>
    public KvmSegment Tr { get => Sregs(Mtd.Tr).Tr; set => SregsW(Mtd.Tr).Tr = value; }

    /// <summary>LDTR (group <see cref="Mtd.Ldtr"/>).</summary>
    public KvmSegment Ldtr { get => Sregs(Mtd.Ldtr).Ldt; set => SregsW(Mtd.Ldtr).Ldt = value; }

    /// <summary>GDTR (group <see cref="Mtd.Gdtr"/>).</summary>
    public KvmDtable Gdtr { get => Sregs(Mtd.Gdtr).Gdt; set => SregsW(Mtd.Gdtr).Gdt = value; }

    /// <summary>IDTR (group <see cref="Mtd.Idtr"/>).</summary>
    public KvmDtable Idtr { get => Sregs(Mtd.Idtr).Idt; set => SregsW(Mtd.Idtr).Idt = value; }

    /// <summary>CR0 (group <see cref="Mtd.Cr"/>).</summary>
    public ulong Cr0 { get => Sregs(Mtd.Cr).Cr0; set => SregsW(Mtd.Cr).Cr0 = value; }

    /// <summary>CR2 (group <see cref="Mtd.Cr"/>).</summary>
    public ulong Cr2 { get => Sregs(Mtd.Cr).Cr2; set => SregsW(Mtd.Cr).Cr2 = value; }

    /// <summary>CR3 (group <see cref="Mtd.Cr"/>).</summary>
    public ulong Cr3 { get => Sregs(Mtd.Cr).Cr3; set => SregsW(Mtd.Cr).Cr3 = value; }

    /// <summary>CR4 (group <see cref="Mtd.Cr"/>).</summary>
    public ulong Cr4 { get => Sregs(Mtd.Cr).Cr4; set => SregsW(Mtd.Cr).Cr4 = value; }

    /// <summary>CR8 (group <see cref="Mtd.Cr"/>).</summary>
    public ulong Cr8 { get => Sregs(Mtd.Cr).Cr8; set => SregsW(Mtd.Cr).Cr8 = value; }

    /// <summary>EFER (group <see cref="Mtd.Efer"/>).</summary>
    public ulong Efer { get => Sregs(Mtd.Efer).Efer; set => SregsW(Mtd.Efer).Efer = value; }

    // ---- Debug registers, MSR groups, FPU (own ioctls) ----

    /// <summary>DR7 (group <see cref="Mtd.Dr"/>).</summary>
    public ulong Dr7 { get => Other(Mtd.Dr)._debugRegs.Dr7; set => OtherW(Mtd.Dr)._debugRegs.Dr7 = value; }

    /// <summary>DR6 (group <see cref="Mtd.Dr"/>).</summary>
    public ulong Dr6 { get => Other(Mtd.Dr)._debugRegs.Dr6; set => OtherW(Mtd.Dr)._debugRegs.Dr6 = value; }

    /// <summary>The debug registers DR0–DR3, DR6, DR7 (group <see cref="Mtd.Dr"/>).</summary>
    public KvmDebugRegs DebugRegs { get => Other(Mtd.Dr)._debugRegs; set => OtherW(Mtd.Dr)._debugRegs = value; }

    /// <summary>IA32_SYSENTER_CS (group <see cref="Mtd.Sysenter"/>).</summary>
    public ulong SysenterCs { get => Other(Mtd.Sysenter)._sysenterCs; set => OtherW(Mtd.Sysenter)._sysenterCs = value; }

    /// <summary>IA32_SYSENTER_ESP (group <see cref="Mtd.Sysenter"/>).</summary>
    public ulong SysenterEsp { get => Other(Mtd.Sysenter)._sysenterEsp; set => OtherW(Mtd.Sysenter)._sysenterEsp = value; }

    /// <summary>IA32_SYSENTER_EIP (group <see cref="Mtd.Sysenter"/>).</summary>
    public ulong SysenterEip { get => Other(Mtd.Sysenter)._sysenterEip; set => OtherW(Mtd.Sysenter)._sysenterEip = value; }

    /// <summary>STAR (group <see cref="Mtd.SyscallSwapgs"/>).</summary>
    public ulong Star { get => Other(Mtd.SyscallSwapgs)._star; set => OtherW(Mtd.SyscallSwapgs)._star = value; }

    /// <summary>LSTAR (group <see cref="Mtd.SyscallSwapgs"/>).</summary>
    public ulong Lstar { get => Other(Mtd.SyscallSwapgs)._lstar; set => OtherW(Mtd.SyscallSwapgs)._lstar = value; }

    /// <summary>CSTAR (group <see cref="Mtd.SyscallSwapgs"/>).</summary>
    public ulong Cstar { get => Other(Mtd.SyscallSwapgs)._cstar; set => OtherW(Mtd.SyscallSwapgs)._cstar = value; }

    /// <summary>FMASK (group <see cref="Mtd.SyscallSwapgs"/>).</summary>
    public ulong Fmask { get => Other(Mtd.SyscallSwapgs)._fmask; set => OtherW(Mtd.SyscallSwapgs)._fmask = value; }

    /// <summary>KERNEL_GS_BASE (group <see cref="Mtd.SyscallSwapgs"/>).</summary>
    public ulong KernelGsBase { get => Other(Mtd.SyscallSwapgs)._kernelGsBase; set => OtherW(Mtd.SyscallSwapgs)._kernelGsBase = value; }

    /// <summary>IA32_TSC (group <see cref="Mtd.Tsc"/>).</summary>
    public ulong Tsc { get => Other(Mtd.Tsc)._tsc; set => OtherW(Mtd.Tsc)._tsc = value; }

    /// <summary>The x87 and SSE state (group <see cref="Mtd.Fpu"/>).</summary>
    public KvmFpu Fpu { get => Other(Mtd.Fpu)._fpu; set => OtherW(Mtd.Fpu)._fpu = value; }

    // ---- Interruptibility (group STA) and injection (group INJ) ----

    /// <summary>The interrupt shadow after STI or MOV SS (group <see cref="Mtd.Sta"/>).</summary>
    public bool InterruptShadow
    {
        get => Events(Mtd.Sta).InterruptShadow != 0;
        set
        {
            ref KvmVcpuEvents e = ref EventsW(Mtd.Sta);
            e.InterruptShadow = value ? (byte)1 : (byte)0;
            e.Flags |= KvmVcpuEvents.ValidShadow;
        }
    }

    /// <summary>Whether NMIs are masked (group <see cref="Mtd.Sta"/>).</summary>
    public bool NmiMasked
    {
        get => Events(Mtd.Sta).NmiMasked != 0;
        set => EventsW(Mtd.Sta).NmiMasked = value ? (byte)1 : (byte)0;
    }

    /// <summary>Whether the guest can take an external interrupt right now (group <see cref="Mtd.Inj"/>).</summary>
    public bool InterruptWindowOpen
    {
        get
        {
            Check(Mtd.Inj);
            return _run->ReadyForInterruptInjection != 0 && _run->IfFlag != 0;
        }
    }

    /// <summary>
    /// Asks for an <see cref="VcpuEvent.IrqWindow"/> event as soon as the guest can take an interrupt
    /// (group <see cref="Mtd.Inj"/>). Costs no ioctl; cleared when the event is delivered.
    /// </summary>
    public bool RequestInterruptWindow
    {
        get
        {
            Check(Mtd.Inj);
            return _run->RequestInterruptWindow != 0;
        }

        set
        {
            Check(Mtd.Inj);
            _run->RequestInterruptWindow = value ? (byte)1 : (byte)0;
        }
    }

    /// <summary>Injects exception <paramref name="vector"/> (with an error code, if given) on reply (group <see cref="Mtd.Inj"/>).</summary>
    /// <exception cref="ArgumentException">Vector 2: an NMI is not an exception; use <see cref="InjectNmi"/>.</exception>
    public void InjectException(byte vector, uint? errorCode = null)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vector, (byte)31);
        if (vector == 2)
        {
            throw new ArgumentException("vector 2 is the NMI, which KVM delivers through the NMI fields of the vCPU events, not as an exception: use InjectNmi", nameof(vector));
        }
        ref KvmVcpuEvents e = ref EventsW(Mtd.Inj);
        e.ExceptionInjected = 1;
        e.ExceptionPending = 0;
        e.ExceptionNr = vector;
        e.ExceptionHasErrorCode = errorCode.HasValue ? (byte)1 : (byte)0;
        e.ExceptionErrorCode = errorCode ?? 0;
        Injected = true;
    }

    /// <summary>Makes an NMI pending on reply (group <see cref="Mtd.Inj"/>); KVM delivers it when NMIs are not masked.</summary>
    public void InjectNmi()
    {
        ref KvmVcpuEvents e = ref EventsW(Mtd.Inj);
        e.NmiPending = 1;
        e.Flags |= KvmVcpuEvents.ValidNmiPending;
        Injected = true;
    }

    /// <summary>
    /// Injects external interrupt <paramref name="vector"/> on reply (group <see cref="Mtd.Inj"/>); only for
    /// a VM without the in-kernel irqchip, and only when <see cref="InterruptWindowOpen"/>.
    /// </summary>
    public void InjectInterrupt(byte vector)
    {
        Check(Mtd.Inj);
        if (_vcpu.Vm.HasIrqchip)
        {
            throw new InvalidOperationException("this VM has the in-kernel irqchip: raise interrupts through its lines, not by injection");
        }
        _pendingInterrupt = vector;
        Injected = true;
    }

    /// <summary>
    /// Delivers software interrupt <paramref name="vector"/> (what <c>INT n</c> does) through the guest's IDT on reply
    /// (group <see cref="Mtd.Inj"/>). RIP must already point past the <c>INT n</c>: that is the return address pushed.
    /// Works with and without the in-kernel irqchip.
    /// </summary>
    public void InjectSoftwareInterrupt(byte vector)
    {
        ref KvmVcpuEvents e = ref EventsW(Mtd.Inj);
        e.InterruptInjected = 1;
        e.InterruptNr = vector;
        e.InterruptSoft = 1;
    }

    // ---- The exit (group QUAL) ----

    /// <summary>The port-I/O exit being handled (group <see cref="Mtd.Qual"/>).</summary>
    public IoExit Io => new(Exit(VcpuEvent.Io));

    /// <summary>The MMIO exit being handled (group <see cref="Mtd.Qual"/>).</summary>
    public MmioExit Mmio => new(Exit(VcpuEvent.Mmio));

    /// <summary>The MSR exit being handled, read or write (group <see cref="Mtd.Qual"/>).</summary>
    public MsrExit Msr
    {
        get
        {
            Check(Mtd.Qual);
            if (Event is not (VcpuEvent.MsrRead or VcpuEvent.MsrWrite))
            {
                throw new InvalidOperationException($"no MSR exit: the event being handled is {Event}");
            }
            return new MsrExit(_run);
        }
    }

    /// <summary>The debug exit being handled (group <see cref="Mtd.Qual"/>).</summary>
    public DebugExit Debug => new(Exit(VcpuEvent.Debug));

    /// <summary>The internal-error exit being handled (group <see cref="Mtd.Qual"/>).</summary>
    public InternalErrorExit InternalError => new(Exit(VcpuEvent.InternalError));

    /// <summary>The system-event exit being handled (group <see cref="Mtd.Qual"/>).</summary>
    public SystemEventExit SystemEvent => new(Exit(VcpuEvent.SystemEvent));

    /// <summary>The failed entry being handled (group <see cref="Mtd.Qual"/>).</summary>
    public EntryFailureExit EntryFailure => new(Exit(VcpuEvent.EntryFailure));

    // ---- Control ----

    /// <summary>
    /// Lets KVM complete the instruction of this port-I/O or MSR exit now, rather than after the reply: a read's
    /// data (<see cref="IoExit.Value"/>, <see cref="MsrExit.Value"/>) must be filled in before. Afterwards RIP is past
    /// the instruction on every host, the state the MTD names is the state after it, and changing RIP or the
    /// registers the instruction wrote is safe. Costs one <c>KVM_RUN</c> (returning at once), and only when called.
    /// Call it before changing any state.
    /// </summary>
    /// <exception cref="InvalidOperationException">Not a port-I/O or MSR exit, a string I/O of several units, or state was changed already.</exception>
    public void CompleteInstruction()
    {
        if (Event is not (VcpuEvent.Io or VcpuEvent.MsrRead or VcpuEvent.MsrWrite) || _completed)
        {
            throw new InvalidOperationException($"the {Event} handler of vCPU {_vcpu.Id} has no instruction to complete: only a port-I/O or MSR exit has, once");
        }
        if (Event == VcpuEvent.Io && _run->IoCount != 1)
        {
            throw new InvalidOperationException($"a string port I/O of {_run->IoCount} units may need further exits to complete; answer it and let the reply complete it");
        }
        if (_changed != Mtd.None || _pendingInterrupt >= 0)
        {
            throw new InvalidOperationException($"the {Event} handler of vCPU {_vcpu.Id} changed {_changed} before CompleteInstruction: complete first, then change the state");
        }
        _dispatcher.CompleteInstruction();
        _completed = true;
        _fresh = _syncRegs ? _run->ValidRegs : 0;
        Fetch(_mtd);
    }

    /// <summary>
    /// After the reply, keeps the vCPU from running until another thread calls
    /// <see cref="VcpuDispatcher.Release"/> (or recalls or stops it): a halted guest waiting for an interrupt.
    /// </summary>
    public void Block() => BlockRequested = true;

    /// <summary>Ends this vCPU's run after the reply; whoever runs the VM gets <paramref name="status"/> and <paramref name="reason"/>.</summary>
    public void Stop(int status, string reason) => StopResult = new VcpuRunResult(VcpuRunOutcome.Stopped, status, reason);

    // ---- The dispatcher's side ----

    /// <summary>Marks which sync-regs parts KVM refreshed on the exit that just happened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void OnExit() => _fresh = _syncRegs ? _run->ValidRegs : 0;

    /// <summary>Before the handler: makes the named groups visible, fetching only what KVM did not already put in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Begin(VcpuEvent ev, Mtd mtd)
    {
        Event = ev;
        _mtd = mtd;
        _changed = Mtd.None;
        Injected = false;
        _completed = false;
        if ((mtd & ~(Mtd.Qual | RegsGroups)) == 0 && ((mtd & RegsGroups) == 0 || (_fresh & KvmRun.SyncX86Regs) != 0))
        {
            return; // the fast path: nothing to fetch
        }
        Fetch(mtd);
    }

    /// <summary>The reply: writes back exactly the groups the handler changed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Reply()
    {
        if (_changed != Mtd.None || _pendingInterrupt >= 0)
        {
            WriteBack();
        }
        _mtd = Mtd.None;
    }

    /// <summary>Forgets what KVM last put in the sync area, e.g. before the first run.</summary>
    internal void Invalidate() => _fresh = 0;

    private void Fetch(Mtd mtd)
    {
        if ((mtd & RegsGroups) != 0 && (_fresh & KvmRun.SyncX86Regs) == 0)
        {
            _vcpu.GetRegs(out _run->SyncRegs);
            _fresh |= KvmRun.SyncX86Regs;
        }
        if ((mtd & SregsGroups) != 0 && (_fresh & KvmRun.SyncX86Sregs) == 0)
        {
            _vcpu.GetSregs(out _run->SyncSregs);
            _fresh |= KvmRun.SyncX86Sregs;
        }
        if ((mtd & EventsGroups) != 0 && (_fresh & KvmRun.SyncX86Events) == 0)
        {
            _vcpu.GetEvents(out _run->SyncEvents);
            _fresh |= KvmRun.SyncX86Events;
        }
        if ((mtd & Mtd.Dr) != 0)
        {
            _vcpu.GetDebugRegs(out _debugRegs);
        }
        if ((mtd & Mtd.Fpu) != 0)
        {
            _vcpu.GetFpu(out _fpu);
        }
        if ((mtd & MsrGroups) != 0)
        {
            TransferMsrs(mtd & MsrGroups, write: false);
        }
    }

    private void WriteBack()
    {
        Mtd changed = _changed;
        if ((changed & RegsGroups) != 0)
        {
            WriteSync(KvmRun.SyncX86Regs);
        }
        if ((changed & SregsGroups) != 0)
        {
            WriteSync(KvmRun.SyncX86Sregs);
        }
        if ((changed & EventsGroups) != 0)
        {
            WriteSync(KvmRun.SyncX86Events);
        }
        if ((changed & Mtd.Dr) != 0)
        {
            _vcpu.SetDebugRegs(_debugRegs);
        }
        if ((changed & Mtd.Fpu) != 0)
        {
            _vcpu.SetFpu(_fpu);
        }
        if ((changed & MsrGroups) != 0)
        {
            TransferMsrs(changed & MsrGroups, write: true);
        }
        if (_pendingInterrupt >= 0)
        {
            byte vector = (byte)_pendingInterrupt;
            _pendingInterrupt = -1;
            _vcpu.Interrupt(vector);
        }
    }

    private void WriteSync(ulong part)
    {
        if (_syncRegs)
        {
            _run->DirtyRegs |= part; // KVM applies it on the next KVM_RUN: no ioctl
            SyncWritebacks++;
            return;
        }
        switch (part)
        {
            case KvmRun.SyncX86Regs: _vcpu.SetRegs(_run->SyncRegs); break;
            case KvmRun.SyncX86Sregs: _vcpu.SetSregs(_run->SyncSregs); break;
            default: _vcpu.SetEvents(_run->SyncEvents); break;
        }
    }

    private void TransferMsrs(Mtd groups, bool write)
    {
        Span<uint> indices = stackalloc uint[9];
        Span<ulong> values = stackalloc ulong[9];
        int n = 0;
        if ((groups & Mtd.Sysenter) != 0)
        {
            indices[n] = MsrSysenterCs; values[n++] = _sysenterCs;
            indices[n] = MsrSysenterEsp; values[n++] = _sysenterEsp;
            indices[n] = MsrSysenterEip; values[n++] = _sysenterEip;
        }
        if ((groups & Mtd.SyscallSwapgs) != 0)
        {
            indices[n] = MsrStar; values[n++] = _star;
            indices[n] = MsrLstar; values[n++] = _lstar;
            indices[n] = MsrCstar; values[n++] = _cstar;
            indices[n] = MsrFmask; values[n++] = _fmask;
            indices[n] = MsrKernelGsBase; values[n++] = _kernelGsBase;
        }
        if ((groups & Mtd.Tsc) != 0)
        {
            indices[n] = MsrTsc; values[n++] = _tsc;
        }
        for (int start = 0; start < n; start += 8)
        {
            int count = Math.Min(8, n - start);
            if (write)
            {
                _vcpu.SetMsrs(indices.Slice(start, count), values.Slice(start, count));
            }
            else
            {
                _vcpu.GetMsrs(indices.Slice(start, count), values.Slice(start, count));
            }
        }
        if (write)
        {
            return;
        }
        for (int i = 0; i < n; i++)
        {
            switch (indices[i])
            {
                case MsrSysenterCs: _sysenterCs = values[i]; break;
                case MsrSysenterEsp: _sysenterEsp = values[i]; break;
                case MsrSysenterEip: _sysenterEip = values[i]; break;
                case MsrStar: _star = values[i]; break;
                case MsrLstar: _lstar = values[i]; break;
                case MsrCstar: _cstar = values[i]; break;
                case MsrFmask: _fmask = values[i]; break;
                case MsrKernelGsBase: _kernelGsBase = values[i]; break;
                default: _tsc = values[i]; break;
            }
        }
    }

    private void CheckAll(Mtd groups)
    {
        if ((_mtd & groups) != groups)
        {
            ThrowNotNamed(groups & ~_mtd);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Check(Mtd group)
    {
        if ((_mtd & group) == 0)
        {
            ThrowNotNamed(group);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref KvmRegs Regs(Mtd group)
    {
        Check(group);
        return ref _run->SyncRegs;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref KvmRegs RegsW(Mtd group)
    {
        Check(group);
        _changed |= group;
        return ref _run->SyncRegs;
    }

    private ref KvmSregs Sregs(Mtd group)
    {
        Check(group);
        return ref _run->SyncSregs;
    }

    private ref KvmSregs SregsW(Mtd group)
    {
        Check(group);
        _changed |= group;
        return ref _run->SyncSregs;
    }

    private ref KvmVcpuEvents Events(Mtd group)
    {
        Check(group);
        return ref _run->SyncEvents;
    }

    private ref KvmVcpuEvents EventsW(Mtd group)
    {
        Check(group);
        _changed |= group;
        return ref _run->SyncEvents;
    }

    private VcpuState Other(Mtd group)
    {
        Check(group);
        return this;
    }

    private VcpuState OtherW(Mtd group)
    {
        Check(group);
        _changed |= group;
        return this;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private KvmRun* Exit(VcpuEvent expected)
    {
        Check(Mtd.Qual);
        if (Event != expected)
        {
            ThrowWrongExit(expected);
        }
        return _run;
    }

    private void ThrowNotNamed(Mtd group) => throw new InvalidOperationException(
        $"the {Event} handler of vCPU {_vcpu.Id} touched state group {group}, which its MTD ({_mtd}) does not name");

    private void ThrowWrongExit(VcpuEvent expected) => throw new InvalidOperationException(
        $"no {expected} exit: the event being handled is {Event}");
}
