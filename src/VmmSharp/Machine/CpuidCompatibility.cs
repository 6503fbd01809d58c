using VmmSharp.Kvm;

namespace VmmSharp.Machine;

/// <summary>Whether a saved guest CPUID asks for features a host's KVM cannot offer.</summary>
internal static class CpuidCompatibility
{
    // (leaf, subleaf, register, bits KVM sets itself or that follow guest state, not features: OSXSAVE, hypervisor,
    // APIC, HTT, OSPKE).
    private static readonly (uint Leaf, uint Subleaf, int Register, uint Dynamic)[] FeatureRegisters =
    [
        (1, 0, 2, (1u << 27) | (1u << 31)),
        (1, 0, 3, (1u << 9) | (1u << 28)),
        (7, 0, 1, 0),
        (7, 0, 2, 1u << 4),
        (7, 0, 3, 0),
        (0x8000_0001, 0, 2, 0),
        (0x8000_0001, 0, 3, 0),
        (0xd, 1, 0, 0),
    ];

    /// <summary>The first feature register whose saved bits the host lacks, as "leaf 0x7.0 EBX bits 0x...", or null.</summary>
    public static string? Missing(ReadOnlySpan<KvmCpuidEntry> saved, ReadOnlySpan<KvmCpuidEntry> host)
    {
        foreach ((uint leaf, uint subleaf, int register, uint dynamic) in FeatureRegisters)
        {
            if (Find(saved, leaf, subleaf) is not { } s)
            {
                continue;
            }
            uint offered = 0;
            foreach (KvmCpuidEntry h in host)
            {
                if (h.Function == leaf && (h.Index == subleaf || (h.Flags & KvmCpuidEntry.FlagSignificantIndex) == 0))
                {
                    offered |= Register(h, register);
                }
            }
            uint lacking = Register(s, register) & ~offered & ~dynamic;
            if (lacking != 0)
            {
                return $"leaf 0x{leaf:x}.{subleaf} {"EAX EBX ECX EDX".Split(' ')[register]} bits 0x{lacking:x}";
            }
        }
        return null;
    }

    private static KvmCpuidEntry? Find(ReadOnlySpan<KvmCpuidEntry> entries, uint leaf, uint subleaf)
    {
        foreach (KvmCpuidEntry e in entries)
        {
            if (e.Function == leaf && (e.Index == subleaf || (e.Flags & KvmCpuidEntry.FlagSignificantIndex) == 0))
            {
                return e;
            }
        }
        return null;
    }

    private static uint Register(KvmCpuidEntry e, int register) => register switch
    {
        0 => e.Eax,
        1 => e.Ebx,
        2 => e.Ecx,
        _ => e.Edx,
    };
}
