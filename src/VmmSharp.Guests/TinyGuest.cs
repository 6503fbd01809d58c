using Iced.Intel;
using VmmSharp.Dispatch;
using VmmSharp.Kvm;
using VmmSharp.Memory;
using static VmmSharp.Guests.TinyGuestLayout;

namespace VmmSharp.Guests;

/// <summary>
/// A small guest assembled at run time with Iced: code placed at <see cref="TinyGuestLayout.Code"/>,
/// plus the GDT, TSS and identity page tables its mode needs. Its Startup state (registers, segments,
/// control registers) is set by <see cref="SetStartupState(VcpuState, ulong)"/> from a Startup handler with <see cref="StartupMtd"/>.
/// For tests, demos and micro-VMs that run one function.
/// </summary>
public sealed class TinyGuest
{
    /// <summary>The groups a Startup handler needs to name to call <see cref="SetStartupState(VcpuState, ulong)"/>.</summary>
    public const Mtd StartupMtd = Mtd.Gpr | Mtd.Segments | Mtd.Cr | Mtd.Efer;

    private const uint TssLimit = 0x68 + 0x2000;

    private TinyGuest(GuestMode mode, byte[] code)
    {
        Mode = mode;
        Code = code;
    }

    /// <summary>The mode the guest starts in.</summary>
    public GuestMode Mode { get; }

    /// <summary>The machine code.</summary>
    public byte[] Code { get; }

    /// <summary>The entry point (the first byte of the code).</summary>
    public static ulong Entry => TinyGuestLayout.Code;

    /// <summary>The bitness of <paramref name="mode"/>'s code.</summary>
    public static int Bitness(GuestMode mode) => mode switch
    {
        GuestMode.Real16 => 16,
        GuestMode.Protected32 => 32,
        _ => 64,
    };

    /// <summary>Assembles <paramref name="program"/> for <paramref name="mode"/>; labels and data may follow the code.</summary>
    public static TinyGuest Assemble(GuestMode mode, Action<Assembler> program)
    {
        ArgumentNullException.ThrowIfNull(program);
        var asm = new Assembler(Bitness(mode));
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), TinyGuestLayout.Code);
        return new TinyGuest(mode, stream.ToArray());
    }

    /// <summary>Writes the code and the tables into <paramref name="memory"/>, which must back [0, 1 MiB).</summary>
    public void Load(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (!memory.Contains(0, MinimumMemory))
        {
            throw new ArgumentException($"a tiny guest needs RAM at [0, 0x{MinimumMemory:x})", nameof(memory));
        }
        if ((ulong)Code.Length > Pml4 - TinyGuestLayout.Code)
        {
            throw new ArgumentException($"the guest's code is {Code.Length} bytes; at most {Pml4 - TinyGuestLayout.Code} fit", nameof(memory));
        }
        memory.Write(TinyGuestLayout.Code, Code);
        WriteGdt(memory);
        memory.Write(Tss + 4, KernelStackTop); // RSP0
        // An all-zero I/O permission bitmap right after the TSS: CPL3 may use every port, whatever the host checks.
        memory.Write(Tss + 0x66, (ushort)0x68);
        memory.Fill(Tss + 0x68, 0x2000, 0);
        memory.Write(Tss + 0x68 + 0x2000, (byte)0xff);
        // Identity map the first 1 GiB with 2 MiB pages, user-accessible so CPL3 code can use it.
        const ulong present = 1, writable = 2, user = 4, large = 0x80;
        memory.Write(Pml4, (Pml4 + 0x1000) | present | writable | user);
        memory.Write(Pml4 + 0x1000, (Pml4 + 0x2000) | present | writable | user);
        for (ulong i = 0; i < 512; i++)
        {
            memory.Write(Pml4 + 0x2000 + (i * 8), (i << 21) | present | writable | user | large);
        }
    }

    /// <summary>Sets the vCPU's state for this guest's entry; call from a Startup handler whose MTD includes <see cref="StartupMtd"/>.</summary>
    public void SetStartupState(VcpuState state, ulong stackTop = StackTop)
    {
        ArgumentNullException.ThrowIfNull(state);
        InitialState(stackTop, out KvmRegs regs, out KvmSregs sregs);
        state.SetRegisters(regs);
        state.SetSystemRegisters(sregs);
    }

    /// <summary>Sets the vCPU's state for this guest's entry directly through ioctls, for code that runs KVM_RUN itself.</summary>
    public void SetStartupState(KvmVcpu vcpu, ulong stackTop = StackTop)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        vcpu.GetSregs(out KvmSregs current);
        InitialState(stackTop, out KvmRegs regs, out KvmSregs sregs);
        sregs.ApicBase = current.ApicBase;
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(regs);
    }

    /// <summary>The registers this guest starts with.</summary>
    public void InitialState(ulong stackTop, out KvmRegs regs, out KvmSregs sregs)
    {
        regs = new KvmRegs { Rip = TinyGuestLayout.Code, Rsp = stackTop, Rflags = 0x2 };
        sregs = default;
        if (Mode == GuestMode.Real16)
        {
            KvmSegment real = Segment(0, 0xffff, 3, s: 1, dpl: 0, db: 0, l: 0, g: 0);
            sregs.Cs = real with { Type = 11 };
            sregs.Ds = sregs.Es = sregs.Fs = sregs.Gs = sregs.Ss = real;
            sregs.Tr = Segment(0, 0xffff, 11, s: 0, dpl: 0, db: 0, l: 0, g: 0);
            sregs.Ldt = Segment(0, 0xffff, 2, s: 0, dpl: 0, db: 0, l: 0, g: 0);
            sregs.Gdt = new KvmDtable { Limit = 0xffff };
            sregs.Idt = new KvmDtable { Limit = 0x3ff };
            sregs.Cr0 = 0x10; // ET only: real mode
            return;
        }
        sregs.Gdt = new KvmDtable { Base = Gdt, Limit = 0x3f };
        sregs.Idt = new KvmDtable { Base = Idt, Limit = 0xfff };
        sregs.Tr = Segment(TssSelector, TssLimit, 11, s: 0, dpl: 0, db: 0, l: 0, g: 0) with { Base = Tss };
        sregs.Ldt = Segment(0, 0xffff, 2, s: 0, dpl: 0, db: 0, l: 0, g: 0) with { Unusable = 1 };
        if (Mode == GuestMode.Protected32)
        {
            sregs.Cs = Segment(KernelCode32, 0xffffffff, 11, s: 1, dpl: 0, db: 1, l: 0, g: 1);
            KvmSegment data32 = Segment(KernelData, 0xffffffff, 3, s: 1, dpl: 0, db: 1, l: 0, g: 1);
            sregs.Ds = sregs.Es = sregs.Fs = sregs.Gs = sregs.Ss = data32;
            sregs.Cr0 = 0x11; // PE, ET
            return;
        }
        bool user = Mode == GuestMode.User64;
        int dpl = user ? 3 : 0;
        sregs.Cs = Segment(user ? UserCode64 : KernelCode64, 0xffffffff, 11, s: 1, dpl: dpl, db: 0, l: 1, g: 1);
        KvmSegment data = Segment(user ? UserData : KernelData, 0xffffffff, 3, s: 1, dpl: dpl, db: 1, l: 0, g: 1);
        sregs.Ds = sregs.Es = sregs.Fs = sregs.Gs = sregs.Ss = data;
        sregs.Cr3 = Pml4;
        sregs.Cr4 = 0x20 | 0x200 | 0x400; // PAE, OSFXSR, OSXMMEXCPT
        sregs.Cr0 = 0x8000_0033; // PG, NE, ET, MP, PE
        sregs.Efer = 0x500; // LME, LMA
        if (user)
        {
            regs.Rflags = 0x3002; // IOPL 3: the code may use IN and OUT
        }
    }

    private static KvmSegment Segment(ushort selector, uint limit, byte type, byte s, int dpl, byte db, byte l, byte g) => new()
    {
        Selector = selector,
        Limit = limit,
        Type = type,
        Present = 1,
        S = s,
        Dpl = (byte)dpl,
        Db = db,
        L = l,
        G = g,
    };

    private static void WriteGdt(GuestMemory memory)
    {
        memory.Write(Gdt + 0x00, 0UL);
        memory.Write(Gdt + KernelCode64, 0x00af_9b00_0000_ffffUL);
        memory.Write(Gdt + KernelData, 0x00cf_9300_0000_ffffUL);
        memory.Write(Gdt + KernelCode32, 0x00cf_9b00_0000_ffffUL);
        memory.Write(Gdt + (UserData & ~3UL), 0x00cf_f300_0000_ffffUL);
        memory.Write(Gdt + (UserCode64 & ~3UL), 0x00af_fb00_0000_ffffUL);
        // 64-bit available TSS (type 9) at Tss, limit 0x67; the upper half holds base bits 63:32 (zero).
        ulong tss = TssLimit | ((Tss & 0xffffff) << 16) | (0x89UL << 40) | ((Tss >> 24 & 0xff) << 56);
        memory.Write(Gdt + TssSelector, tss);
        memory.Write(Gdt + TssSelector + 8, 0UL);
    }
}
