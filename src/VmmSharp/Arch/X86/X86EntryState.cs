using VmmSharp.Memory;

namespace VmmSharp.Arch.X86;

/// <summary>
/// The CPU state at a kernel's first instruction, independent of KVM: the machine layer turns it into
/// registers and segment state. General-purpose registers not listed here are zero.
/// The factories also write what the state refers to (GDT, IDT, page tables) into guest memory.
/// </summary>
public sealed record X86EntryState
{
    /// <summary>CR0.PE: protected mode.</summary>
    public const ulong Cr0ProtectionEnable = 0x1;

    /// <summary>CR0.ET: always 1 on modern CPUs; set so the value matches what the CPU reports.</summary>
    public const ulong Cr0ExtensionType = 0x10;

    /// <summary>CR0.PG: paging.</summary>
    public const ulong Cr0Paging = 0x8000_0000;

    /// <summary>CR4.PAE: needed for long mode.</summary>
    public const ulong Cr4Pae = 0x20;

    /// <summary>EFER.LME: long mode enable.</summary>
    public const ulong EferLme = 0x100;

    /// <summary>EFER.LMA: long mode active (set together with CR0.PG when entering in 64-bit mode directly).</summary>
    public const ulong EferLma = 0x400;

    /// <summary>RFLAGS with only the always-one bit 1 set: interrupts off.</summary>
    public const ulong DefaultRflags = 0x2;

    /// <summary>The mode the kernel is entered in.</summary>
    public required X86CpuMode Mode { get; init; }

    /// <summary>The entry point.</summary>
    public required ulong Rip { get; init; }

    /// <summary>The stack pointer (0 where the boot protocol gives no stack).</summary>
    public ulong Rsp { get; init; }

    /// <summary>RAX (Multiboot: the bootloader magic).</summary>
    public ulong Rax { get; init; }

    /// <summary>RBX (PVH: start_info address; Multiboot: MBI address).</summary>
    public ulong Rbx { get; init; }

    /// <summary>RSI (Linux: the zero page).</summary>
    public ulong Rsi { get; init; }

    /// <summary>RDI.</summary>
    public ulong Rdi { get; init; }

    /// <summary>RFLAGS.</summary>
    public ulong Rflags { get; init; } = DefaultRflags;

    /// <summary>CR0.</summary>
    public required ulong Cr0 { get; init; }

    /// <summary>CR3 (the PML4 in long mode, else 0).</summary>
    public ulong Cr3 { get; init; }

    /// <summary>CR4.</summary>
    public ulong Cr4 { get; init; }

    /// <summary>EFER.</summary>
    public ulong Efer { get; init; }

    /// <summary>The GDT's guest-physical base.</summary>
    public ulong GdtBase { get; init; } = Layout.Gdt;

    /// <summary>The GDT limit (size − 1).</summary>
    public ushort GdtLimit { get; init; } = Gdt.Limit;

    /// <summary>The IDT's guest-physical base.</summary>
    public ulong IdtBase { get; init; } = Layout.Idt;

    /// <summary>The IDT limit (size − 1).</summary>
    public ushort IdtLimit { get; init; } = IdtSize - 1;

    /// <summary>CS.</summary>
    public required SegmentDescriptor Cs { get; init; }

    /// <summary>DS.</summary>
    public required SegmentDescriptor Ds { get; init; }

    /// <summary>ES.</summary>
    public required SegmentDescriptor Es { get; init; }

    /// <summary>FS.</summary>
    public required SegmentDescriptor Fs { get; init; }

    /// <summary>GS.</summary>
    public required SegmentDescriptor Gs { get; init; }

    /// <summary>SS.</summary>
    public required SegmentDescriptor Ss { get; init; }

    /// <summary>TR: a busy TSS with base 0 and limit 0x67, which KVM's entry checks need even though nothing uses it.</summary>
    public required SegmentDescriptor Tr { get; init; }

    // One zeroed gate: a valid, empty IDT. Any exception before the kernel loads its own shuts the vCPU down.
    private const ushort IdtSize = 8;

    /// <summary>
    /// 32-bit protected mode as PVH and Multiboot want it: flat 4 GiB code and data, paging off, CR0.PE set,
    /// CR4 zero, interrupts off. Writes the GDT and an empty IDT.
    /// </summary>
    public static X86EntryState Protected32(GuestMemory memory, uint entry, uint eax = 0, uint ebx = 0, uint esp = 0)
        => Flat(memory, X86CpuMode.Protected32, SegmentDescriptor.FlatCode32(Gdt.CodeSelector), entry, Cr0ProtectionEnable | Cr0ExtensionType) with
        {
            Rsp = esp,
            Rax = eax,
            Rbx = ebx,
        };

    /// <summary>
    /// 64-bit long mode as Linux's 64-bit boot protocol wants it: identity paging of the first 4 GiB,
    /// CS = 0x10 (64-bit code), DS/ES/SS = 0x18 (flat data), interrupts off. Writes the GDT, an empty IDT and the page tables.
    /// </summary>
    public static X86EntryState Long64(GuestMemory memory, ulong entry, ulong rsi = 0, ulong rsp = 0)
    {
        X86EntryState state = Flat(memory, X86CpuMode.Long64, SegmentDescriptor.Code64(Gdt.CodeSelector), entry, Cr0ProtectionEnable | Cr0ExtensionType | Cr0Paging);
        return state with
        {
            Rsp = rsp,
            Rsi = rsi,
            Cr3 = PageTables.WriteIdentityMap(memory),
            Cr4 = Cr4Pae,
            Efer = EferLme | EferLma,
        };
    }

    /// <summary>Writes the GDT (code <paramref name="cs"/>, flat data, busy TSS) and an empty IDT; the state loads them.</summary>
    private static X86EntryState Flat(GuestMemory memory, X86CpuMode mode, SegmentDescriptor cs, ulong rip, ulong cr0)
    {
        ArgumentNullException.ThrowIfNull(memory);
        SegmentDescriptor ds = SegmentDescriptor.FlatData(Gdt.DataSelector);
        SegmentDescriptor tr = SegmentDescriptor.BusyTss(Gdt.TssSelector, 0);
        Gdt.Write(memory, cs, ds, tr);
        memory.Fill(Layout.Idt, IdtSize, 0);
        return new X86EntryState
        {
            Mode = mode,
            Rip = rip,
            Cr0 = cr0,
            Cs = cs,
            Ds = ds,
            Es = ds,
            Fs = ds,
            Gs = ds,
            Ss = ds,
            Tr = tr,
        };
    }
}
