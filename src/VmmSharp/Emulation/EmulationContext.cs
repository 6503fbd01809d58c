using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Kvm;

namespace VmmSharp.Emulation;

/// <summary>
/// What an instruction implementation sees of its vCPU while the fallback handles one emulation failure: the
/// registers (through the dispatcher's <see cref="VcpuState"/>), guest memory by linear address (through the
/// fallback's own page walk), and the x87/SSE and XSAVE state, fetched only when an instruction asks for it.
/// Exceptions the instruction raises are injected, never thrown. One per vCPU; only its dispatcher thread uses it.
/// </summary>
internal sealed class EmulationContext(IGuestPhysicalSpace space)
{
    public const byte UD = 6, NM = 7, GP = 13, SS = 12, PF = 14, MF = 16, NP = 11;

    private const ulong Cr0Em = 1UL << 2, Cr0Ts = 1UL << 3, Cr0Mp = 1UL << 1, Cr0Ne = 1UL << 5;
    private const ulong Cr4Osfxsr = 1UL << 9, Cr4Osxsave = 1UL << 18;

    private KvmFpu _fpu;
    private KvmXsave _xsave;
    private bool _fpuLoaded, _fpuDirty, _xsaveLoaded, _xsaveDirty;
    private VcpuState? _state;
    private int _hasXcrs = -1;

    /// <summary>The guest-physical space.</summary>
    public IGuestPhysicalSpace Space => space;

    /// <summary>The vCPU state of the exit being handled.</summary>
    public VcpuState State => _state!;

    /// <summary>The code size: 16, 32 or 64.</summary>
    public int Bitness { get; private set; }

    /// <summary>The current privilege level.</summary>
    public int Cpl { get; private set; }

    /// <summary>The paging context the walk uses.</summary>
    public PagingContext Paging { get; private set; }

    /// <summary>Whether the instruction raised an exception (it is then injected and RIP stays on it).</summary>
    public bool Faulted { get; private set; }

    /// <summary>The exception raised, for statistics and tests; -1 for none.</summary>
    public int FaultVector { get; private set; } = -1;

    public bool ProtectedMode => (State.Cr0 & 1) != 0;

    public ulong Cr0 => State.Cr0;

    public ulong Cr4 => State.Cr4;

    /// <summary>Starts handling one exit.</summary>
    public void Begin(VcpuState state)
    {
        _state = state;
        _fpuLoaded = _fpuDirty = _xsaveLoaded = _xsaveDirty = false;
        Faulted = false;
        FaultVector = -1;
        KvmSegment cs = state.Cs;
        ulong efer = state.Efer, cr0 = state.Cr0;
        Bitness = (efer & (1UL << 10)) != 0 && cs.L != 0 ? 64 : (cr0 & 1) != 0 && cs.Db != 0 ? 32 : 16;
        bool vm86 = (state.Rflags & (1UL << 17)) != 0;
        Cpl = (cr0 & 1) == 0 ? 0 : vm86 ? 3 : cs.Dpl;
        Paging = PagingContext.From(cr0, state.Cr3, state.Cr4, efer, state.Rflags);
    }

    /// <summary>Writes back the FPU or XSAVE state an instruction changed.</summary>
    public void End()
    {
        if (_fpuDirty)
        {
            State.Vcpu.SetFpu(_fpu);
        }
        if (_xsaveDirty)
        {
            State.Vcpu.SetXsave(_xsave);
        }
        _state = null;
    }

    // ---- Exceptions ----

    /// <summary>Raises exception <paramref name="vector"/>; returns false so callers can <c>return ctx.Raise(...)</c>.</summary>
    public bool Raise(byte vector, uint? errorCode = null)
    {
        Faulted = true;
        FaultVector = vector;
        State.InjectException(vector, errorCode);
        return false;
    }

    /// <summary>Raises #PF for <paramref name="linear"/> with <paramref name="errorCode"/> (CR2 set as the hardware sets it).</summary>
    public bool RaisePageFault(ulong linear, uint errorCode)
    {
        State.Cr2 = linear;
        return Raise(PF, errorCode);
    }

    /// <summary>The device-not-available and x87 checks: #UD with CR0.EM (for SSE/MMX), #NM with CR0.TS.</summary>
    public bool CheckSse(bool vex = false)
    {
        if (vex)
        {
            if ((Cr4 & Cr4Osxsave) == 0 || (Xcr0() & 6) != 6)
            {
                return Raise(UD);
            }
        }
        else if ((Cr0 & Cr0Em) != 0 || (Cr4 & Cr4Osfxsr) == 0)
        {
            return Raise(UD);
        }
        return (Cr0 & Cr0Ts) == 0 || Raise(NM);
    }

    /// <summary>For FWAIT: #NM when CR0.TS and CR0.MP are both set.</summary>
    public bool CheckWait() => (Cr0 & (Cr0Ts | Cr0Mp)) != (Cr0Ts | Cr0Mp) || Raise(NM);

    /// <summary>For x87 instructions: #NM when CR0.EM or CR0.TS.</summary>
    public bool CheckX87() => (Cr0 & (Cr0Em | Cr0Ts)) == 0 || Raise(NM);

    /// <summary>Whether CR0.NE asks for #MF (else the legacy FERR# line) on an x87 error.</summary>
    public bool NativeFpuErrors => (Cr0 & Cr0Ne) != 0;

    public bool OsXsave => (Cr4 & Cr4Osxsave) != 0;

    // ---- Registers ----

    /// <summary>Reads a general-purpose register of any size.</summary>
    public ulong ReadGpr(Register register)
    {
        if (register is Register.AH or Register.CH or Register.DH or Register.BH)
        {
            return (Gpr64(register - Register.AH) >> 8) & 0xff;
        }
        ulong value = Gpr64(register.GetFullRegister() - Register.RAX);
        return register.GetSize() switch { 1 => value & 0xff, 2 => value & 0xffff, 4 => value & 0xffff_ffff, _ => value };
    }

    /// <summary>The full 64-bit register with index <paramref name="index"/> (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8…).</summary>
    public ulong Gpr64(int index) => index switch
    {
        0 => State.Rax,
        1 => State.Rcx,
        2 => State.Rdx,
        3 => State.Rbx,
        4 => State.Rsp,
        5 => State.Rbp,
        6 => State.Rsi,
        7 => State.Rdi,
        8 => State.R8,
        9 => State.R9,
        10 => State.R10,
        11 => State.R11,
        12 => State.R12,
        13 => State.R13,
        14 => State.R14,
        15 => State.R15,
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "no such register"),
    };

    /// <summary>Sets the low 32 bits of a register, zero-extending as a 32-bit register write does.</summary>
    public void SetGpr32(int index, uint value)
    {
        switch (index)
        {
            case 0: State.Rax = value; break;
            case 1: State.Rcx = value; break;
            case 2: State.Rdx = value; break;
            case 3: State.Rbx = value; break;
            default: throw new ArgumentOutOfRangeException(nameof(index), index, "only RAX, RCX, RDX, RBX");
        }
    }

    /// <summary>Moves RIP past <paramref name="instruction"/>, wrapping as the code size does.</summary>
    public void Advance(in Instruction instruction)
    {
        ulong next = State.Rip + (ulong)instruction.Length;
        State.Rip = Bitness switch { 16 => next & 0xffff, 32 => next & 0xffff_ffff, _ => next };
    }

    /// <summary>Sets or clears RFLAGS.ZF.</summary>
    public void SetZeroFlag(bool set) => State.Rflags = set ? State.Rflags | 0x40 : State.Rflags & ~0x40UL;

    // ---- Memory ----

    /// <summary>
    /// The linear address of <paramref name="instruction"/>'s memory operand for an access of <paramref name="size"/>
    /// bytes, with the segment checks (canonical form in 64-bit mode, the limit elsewhere); raises #GP/#SS on failure.
    /// </summary>
    public bool TryLinearAddress(in Instruction instruction, int size, out ulong linear)
    {
        ulong ea;
        Register baseReg = instruction.MemoryBase, index = instruction.MemoryIndex;
        if (baseReg is Register.RIP or Register.EIP)
        {
            ea = instruction.MemoryDisplacement64;
        }
        else
        {
            ea = instruction.MemoryDisplacement64;
            if (baseReg != Register.None)
            {
                ea += ReadGpr(baseReg);
            }
            if (index != Register.None)
            {
                ea += ReadGpr(index) * (ulong)instruction.MemoryIndexScale;
            }
        }
        int addressSize = baseReg != Register.None ? baseReg.GetSize()
            : index != Register.None ? index.GetSize()
            : Bitness / 8;
        ea = addressSize switch { 2 => ea & 0xffff, 4 => ea & 0xffff_ffff, _ => ea };
        Register segment = instruction.MemorySegment;
        bool stack = segment == Register.SS;
        if (Bitness == 64)
        {
            linear = ea + (segment switch { Register.FS => State.Fs.Base, Register.GS => State.Gs.Base, _ => 0UL });
            ulong last = linear + (ulong)Math.Max(size - 1, 0);
            if (!Canonical(linear) || !Canonical(last))
            {
                linear = 0;
                return Raise(stack ? SS : GP, 0);
            }
            return true;
        }
        KvmSegment seg = Segment(segment);
        if (ProtectedMode && (seg.Unusable != 0 || (ulong)size - 1 + ea > seg.Limit))
        {
            linear = 0;
            return Raise(stack ? SS : GP, 0);
        }
        linear = (seg.Base + ea) & 0xffff_ffff;
        return true;
    }

    /// <summary>The access kind for an explicit data access at the current CPL.</summary>
    public AccessKind DataAccess(bool write) => (write ? AccessKind.Write : AccessKind.Read) | (Cpl == 3 ? AccessKind.User : 0);

    /// <summary>Translates one byte's page; raises #PF and returns false where the walk fails.</summary>
    public bool TryTranslate(ulong linear, AccessKind access, out ulong physical)
    {
        if (!PageWalker.Translate(space, Paging, linear, access, out physical, out uint error))
        {
            return RaisePageFault(linear, error);
        }
        if (Bitness != 64 && Paging.Mode == PagingMode.Off)
        {
            physical &= 0xffff_ffff;
        }
        return true;
    }

    /// <summary>Reads <c>data.Length</c> bytes at <paramref name="linear"/> (RAM or MMIO); raises #PF on a failed walk.</summary>
    public bool TryRead(ulong linear, Span<byte> data, AccessKind access) => Access(linear, data, access, write: false);

    /// <summary>Writes <paramref name="data"/> at <paramref name="linear"/> (RAM or MMIO); raises #PF on a failed walk.</summary>
    public bool TryWrite(ulong linear, ReadOnlySpan<byte> data, AccessKind access)
    {
        Span<byte> buffer = stackalloc byte[Math.Min(data.Length, 64)];
        if (data.Length > buffer.Length)
        {
            return TryWriteLarge(linear, data, access);
        }
        data.CopyTo(buffer);
        return Access(linear, buffer, access | AccessKind.Write, write: true);
    }

    /// <summary>Checks that every page of [linear, linear+length) can be accessed, before a multi-part write.</summary>
    public bool TryProbe(ulong linear, int length, AccessKind access)
    {
        ulong end = linear + (ulong)length;
        for (ulong page = linear & ~0xfffUL; page < end; page += 0x1000)
        {
            if (!TryTranslate(Math.Max(page, linear), access, out _))
            {
                return false;
            }
        }
        return true;
    }

    private bool TryWriteLarge(ulong linear, ReadOnlySpan<byte> data, AccessKind access)
    {
        Span<byte> chunk = stackalloc byte[64];
        for (int done = 0; done < data.Length; done += chunk.Length)
        {
            int n = Math.Min(chunk.Length, data.Length - done);
            data.Slice(done, n).CopyTo(chunk);
            if (!Access(linear + (ulong)done, chunk[..n], access | AccessKind.Write, write: true))
            {
                return false;
            }
        }
        return true;
    }

    private bool Access(ulong linear, Span<byte> data, AccessKind access, bool write)
    {
        // Translate both pages of a page-crossing access before touching either: a fault leaves memory unchanged.
        int first = (int)Math.Min((ulong)data.Length, 0x1000 - (linear & 0xfff));
        if (!TryTranslate(linear, access, out ulong pa0))
        {
            return false;
        }
        ulong pa1 = 0;
        if (first < data.Length && !TryTranslate(Wrap(linear + (ulong)first), access, out pa1))
        {
            return false;
        }
        Physical(pa0, data[..first], write);
        if (first < data.Length)
        {
            Physical(pa1, data[first..], write);
        }
        return true;
    }

    private ulong Wrap(ulong linear) => Bitness == 64 ? linear : linear & 0xffff_ffff;

    private void Physical(ulong physical, Span<byte> data, bool write)
    {
        if (space.TryGetRam(physical, data.Length, write, out Span<byte> ram))
        {
            if (write)
            {
                data.CopyTo(ram);
            }
            else
            {
                ram.CopyTo(data);
            }
            return;
        }
        // MMIO in accesses of at most 8 bytes, as KVM reports them to devices.
        for (int done = 0; done < data.Length; done += 8)
        {
            Span<byte> part = data.Slice(done, Math.Min(8, data.Length - done));
            if (write)
            {
                space.MmioWrite(physical + (ulong)done, part);
            }
            else
            {
                space.MmioRead(physical + (ulong)done, part);
            }
        }
    }

    private static bool Canonical(ulong address) => (long)address << 16 >> 16 == (long)address;

    private KvmSegment Segment(Register segment) => segment switch
    {
        Register.ES => State.Es,
        Register.CS => State.Cs,
        Register.SS => State.Ss,
        Register.FS => State.Fs,
        Register.GS => State.Gs,
        _ => State.Ds,
    };

    // ---- x87/SSE and XSAVE state, fetched on first use ----

    /// <summary>The x87/SSE state (KVM_GET_FPU on first use).</summary>
    public ref KvmFpu Fpu()
    {
        if (_xsaveLoaded)
        {
            throw new InvalidOperationException("an instruction uses either the FPU or the XSAVE view of the state, not both");
        }
        if (!_fpuLoaded)
        {
            State.Vcpu.GetFpu(out _fpu);
            _fpuLoaded = true;
        }
        return ref _fpu;
    }

    /// <summary>Marks the x87/SSE state changed: written back (KVM_SET_FPU) when the exit is done.</summary>
    public void FpuChanged() => _fpuDirty = true;

    /// <summary>The XSAVE state in the standard layout (KVM_GET_XSAVE on first use).</summary>
    public Span<byte> Xsave()
    {
        if (_fpuLoaded)
        {
            throw new InvalidOperationException("an instruction uses either the FPU or the XSAVE view of the state, not both");
        }
        if (!_xsaveLoaded)
        {
            State.Vcpu.GetXsave(out _xsave);
            _xsaveLoaded = true;
        }
        return _xsave;
    }

    /// <summary>Marks the XSAVE state changed: written back (KVM_SET_XSAVE) when the exit is done.</summary>
    public void XsaveChanged() => _xsaveDirty = true;

    /// <summary>The guest's XCR0 (KVM_GET_XCRS); 1 (x87 only) where KVM has no XCRs.</summary>
    public ulong Xcr0()
    {
        if (_hasXcrs < 0)
        {
            _hasXcrs = State.Vcpu.Vm.CheckExtension(KvmCapability.Xcrs) > 0 ? 1 : 0;
        }
        if (_hasXcrs == 0)
        {
            return 1;
        }
        State.Vcpu.GetXcrs(out KvmXcrs xcrs);
        for (int i = 0; i < (int)Math.Min(xcrs.Count, 16u); i++)
        {
            if (xcrs.Xcrs[i].Index == 0)
            {
                return xcrs.Xcrs[i].Value;
            }
        }
        return 1;
    }
}
