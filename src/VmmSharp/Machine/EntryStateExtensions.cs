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
    /// CR4 and EFER from <paramref name="entry"/>; other general-purpose registers become zero. Call from a Startup
    /// handler whose MTD includes <see cref="RequiredMtd"/>.
    /// </summary>
    public static void ApplyTo(this X86EntryState entry, VcpuState state)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(state);
        state.Rax = entry.Rax;
        state.Rbx = entry.Rbx;
        state.Rcx = 0;
        state.Rdx = 0;
        state.Rsi = entry.Rsi;
        state.Rdi = entry.Rdi;
        state.Rbp = 0;
        state.Rsp = entry.Rsp;
        state.Rip = entry.Rip;
        state.Rflags = entry.Rflags;
        state.R8 = state.R9 = state.R10 = state.R11 = state.R12 = state.R13 = state.R14 = state.R15 = 0;

        state.Cs = ToKvm(entry.Cs);
        state.Ds = ToKvm(entry.Ds);
        state.Es = ToKvm(entry.Es);
        state.Fs = ToKvm(entry.Fs);
        state.Gs = ToKvm(entry.Gs);
        state.Ss = ToKvm(entry.Ss);
        state.Tr = ToKvm(entry.Tr);
        // No LDT: a null selector, marked unusable (type 2, an LDT, as VMX wants even for an unusable LDTR).
        state.Ldtr = new KvmSegment { Selector = 0, Limit = 0xffff, Type = 2, Present = 1, Unusable = 1 };
        state.Gdtr = new KvmDtable { Base = entry.GdtBase, Limit = entry.GdtLimit };
        state.Idtr = new KvmDtable { Base = entry.IdtBase, Limit = entry.IdtLimit };

        state.Cr0 = entry.Cr0;
        state.Cr3 = entry.Cr3;
        state.Cr4 = entry.Cr4;
        state.Efer = entry.Efer;
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
