using VmmSharp.Arch.X86;
using VmmSharp.Dispatch;
using VmmSharp.Kvm;

namespace VmmSharp.Machine;

/// <summary>Turns the KVM-agnostic <see cref="X86EntryState"/> a boot loader produced into a vCPU's state.</summary>
public static class EntryStateExtensions
{
    /// <summary>The groups a Startup handler's MTD must name to call <see cref="ApplyTo"/>.</summary>
    public const Mtd RequiredMtd = Mtd.Gpr | Mtd.Segments | Mtd.Cr | Mtd.Efer;

    /// <summary>
    /// Sets <paramref name="state"/>'s registers, segments (TR and an unusable LDTR included), GDTR, IDTR, CR0, CR3,
    /// CR4 and EFER from <paramref name="entry"/>; other general-purpose and control registers become zero. Call from a Startup
    /// handler whose MTD includes <see cref="RequiredMtd"/>.
    /// </summary>
    public static void ApplyTo(this X86EntryState entry, VcpuState state)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(state);
        state.SetRegisters(new KvmRegs
        {
            Rax = entry.Rax,
            Rbx = entry.Rbx,
            Rsi = entry.Rsi,
            Rdi = entry.Rdi,
            Rsp = entry.Rsp,
            Rip = entry.Rip,
            Rflags = entry.Rflags,
        });
        state.SetSystemRegisters(new KvmSregs
        {
            Cs = ToKvm(entry.Cs),
            Ds = ToKvm(entry.Ds),
            Es = ToKvm(entry.Es),
            Fs = ToKvm(entry.Fs),
            Gs = ToKvm(entry.Gs),
            Ss = ToKvm(entry.Ss),
            Tr = ToKvm(entry.Tr),
            // No LDT: a null selector, marked unusable (type 2, an LDT, as VMX wants even for an unusable LDTR).
            Ldt = new KvmSegment { Selector = 0, Limit = 0xffff, Type = 2, Present = 1, Unusable = 1 },
            Gdt = new KvmDtable { Base = entry.GdtBase, Limit = entry.GdtLimit },
            Idt = new KvmDtable { Base = entry.IdtBase, Limit = entry.IdtLimit },
            Cr0 = entry.Cr0,
            Cr3 = entry.Cr3,
            Cr4 = entry.Cr4,
            Efer = entry.Efer,
        });
    }

    /// <summary>The <c>kvm_segment</c> for <paramref name="segment"/>.</summary>
    public static KvmSegment ToKvm(this SegmentDescriptor segment) => new()
    {
        Base = segment.Base,
        Limit = segment.Limit,
        Selector = segment.Selector,
        Type = segment.Type,
        Present = segment.Present ? (byte)1 : (byte)0,
        Dpl = segment.Dpl,
        Db = segment.DefaultBig ? (byte)1 : (byte)0,
        S = segment.CodeOrData ? (byte)1 : (byte)0,
        L = segment.LongMode ? (byte)1 : (byte)0,
        G = segment.Granularity ? (byte)1 : (byte)0,
        Unusable = segment.Present ? (byte)0 : (byte)1,
    };
}
