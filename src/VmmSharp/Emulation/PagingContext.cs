namespace VmmSharp.Emulation;

/// <summary>The control-register bits a page walk depends on.</summary>
/// <param name="Mode">The paging mode.</param>
/// <param name="Cr3">CR3: the root table.</param>
/// <param name="WriteProtect">CR0.WP: supervisor writes honour read-only pages.</param>
/// <param name="NoExecute">EFER.NXE: the XD bit is honoured (else it is reserved).</param>
/// <param name="LargePages">CR4.PSE: 4 MiB pages in 32-bit paging.</param>
/// <param name="Smep">CR4.SMEP: supervisor fetches from user pages fault.</param>
/// <param name="Smap">CR4.SMAP: supervisor data accesses to user pages fault unless <paramref name="AlignmentCheck"/>.</param>
/// <param name="AlignmentCheck">RFLAGS.AC, which lifts SMAP for explicit accesses.</param>
public readonly record struct PagingContext(PagingMode Mode, ulong Cr3, bool WriteProtect = false, bool NoExecute = false,
    bool LargePages = false, bool Smep = false, bool Smap = false, bool AlignmentCheck = false)
{
    /// <summary>The context that CR0, CR3, CR4, EFER and RFLAGS describe.</summary>
    public static PagingContext From(ulong cr0, ulong cr3, ulong cr4, ulong efer, ulong rflags)
    {
        PagingMode mode = (cr0 & (1UL << 31)) == 0 ? PagingMode.Off
            : (cr4 & (1UL << 5)) == 0 ? PagingMode.Bits32
            : (efer & (1UL << 10)) == 0 ? PagingMode.Pae
            : (cr4 & (1UL << 12)) != 0 ? PagingMode.FiveLevel
            : PagingMode.FourLevel;
        return new PagingContext(mode, cr3,
            WriteProtect: (cr0 & (1UL << 16)) != 0,
            NoExecute: (efer & (1UL << 11)) != 0,
            LargePages: (cr4 & (1UL << 4)) != 0,
            Smep: (cr4 & (1UL << 20)) != 0,
            Smap: (cr4 & (1UL << 21)) != 0,
            AlignmentCheck: (rflags & (1UL << 18)) != 0);
    }
}
