using System.Numerics;
using VmmSharp.Kvm;

namespace VmmSharp.Arch.X86;

/// <summary>
/// The topology CPUID tells a guest of <c>cpuCount</c> CPUs: one package, one core per CPU, one thread per core,
/// APIC ids 0..N−1 (as the MP table and MADT say), so every vCPU describes the same machine and only its own id differs.
/// KVM's supported leaves carry the host's topology (the CPU that asked, the host's core and thread counts); this
/// replaces it in leaf 1, 4, 0xB, 0x1F and, on AMD, 0x8000_0008, 0x8000_001D and 0x8000_001E.
/// </summary>
internal readonly struct CpuidTopology
{
    private const uint AmdEbx = 0x6874_7541;   // "Auth"
    private const uint HygonEbx = 0x6f67_7948; // "Hygo"
    private const uint LevelSmt = 1;
    private const uint LevelCore = 2;

    private readonly uint _apicId;
    private readonly uint _cpuCount;
    private readonly int _coreBits;

    public CpuidTopology(int apicId, int cpuCount)
    {
        _apicId = (uint)apicId;
        _cpuCount = (uint)cpuCount;
        // APIC id bits the cores take: the package's id space is the next power of two.
        _coreBits = cpuCount <= 1 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)cpuCount - 1);
    }

    /// <summary>Logical-processor ids the package can address: a power of two, at least the CPU count.</summary>
    private uint Addressable => 1u << _coreBits;

    /// <summary>True when the leaves follow AMD's (or Hygon's) definitions of the extended topology leaves.</summary>
    public static bool IsAmd(ReadOnlySpan<KvmCpuidEntry> leaves)
    {
        foreach (KvmCpuidEntry e in leaves)
        {
            if (e.Function == 0)
            {
                return e.Ebx is AmdEbx or HygonEbx;
            }
        }
        return false;
    }

    /// <summary>True for the leaves <see cref="ExtendedTopology"/> replaces as a whole (every subleaf).</summary>
    public static bool IsExtendedTopologyLeaf(uint function) => function is 0xb or 0x1f;

    /// <summary>Rewrites the topology fields of one leaf in place; <paramref name="amd"/> selects the AMD-only leaves.</summary>
    public void Apply(ref KvmCpuidEntry e, bool amd)
    {
        switch (e.Function)
        {
            case 1:
                // EBX[31:24] initial APIC id, [23:16] addressable logical processors; EDX[28] HTT: more than one.
                e.Ebx = (e.Ebx & 0x0000_ffff) | ((_apicId & 0xff) << 24) | (Math.Min(Addressable, 255u) << 16);
                e.Edx = _cpuCount > 1 ? e.Edx | (1u << 28) : e.Edx & ~(1u << 28);
                break;
            case 4 when (e.Eax & 0x1f) != 0:
                // EAX[31:26] addressable cores − 1; [25:14] logical processors sharing the cache − 1.
                e.Eax = (e.Eax & 0x3fff) | (CacheSharing(e.Eax) << 14) | (Math.Min(Addressable - 1, 63u) << 26);
                break;
            case 0x8000_0008 when amd:
                // ECX[7:0] threads in the package − 1, [15:12] APIC id bits for them; the rest is the host's.
                e.Ecx = (e.Ecx & ~0xf0ffu) | (_cpuCount - 1) | ((uint)_coreBits << 12);
                break;
            case 0x8000_001d when amd && (e.Eax & 0x1f) != 0:
                e.Eax = (e.Eax & ~(0xfffu << 14)) | (CacheSharing(e.Eax) << 14);
                break;
            case 0x8000_001e when amd:
                // Extended APIC id; core id (= APIC id, one thread per core); one node.
                e.Eax = _apicId;
                e.Ebx = _apicId & 0xff;
                e.Ecx = 0;
                e.Edx = 0;
                break;
        }
    }

    /// <summary>
    /// Subleaves 0 (SMT level: one thread), 1 (core level: all the CPUs) and 2 (the invalid level that ends the list)
    /// of leaf 0xB or 0x1F, each with this vCPU's x2APIC id in EDX.
    /// </summary>
    public void ExtendedTopology(uint function, List<KvmCpuidEntry> into)
    {
        const uint flags = KvmCpuidEntry.FlagSignificantIndex;
        into.Add(new KvmCpuidEntry { Function = function, Index = 0, Flags = flags, Eax = 0, Ebx = 1, Ecx = LevelSmt << 8, Edx = _apicId });
        into.Add(new KvmCpuidEntry { Function = function, Index = 1, Flags = flags, Eax = (uint)_coreBits, Ebx = _cpuCount, Ecx = 1 | (LevelCore << 8), Edx = _apicId });
        into.Add(new KvmCpuidEntry { Function = function, Index = 2, Flags = flags, Eax = 0, Ebx = 0, Ecx = 2, Edx = _apicId });
    }

    /// <summary>Caches up to L2 belong to one core (one thread); L3 and beyond to the whole package.</summary>
    private uint CacheSharing(uint eax) => ((eax >> 5) & 7) >= 3 ? Addressable - 1 : 0;
}
