using VmmSharp.Kvm;

namespace VmmSharp.Arch.X86;

/// <summary>Which CPUID features a machine hides from its guest before any explicit <see cref="CpuidMask"/>.</summary>
public enum CpuidPolicy
{
    /// <summary>What the host needs: on PVM, <see cref="CpuidPolicies.Pvm"/>; with hardware virtualization, nothing.</summary>
    Auto,

    /// <summary><see cref="CpuidPolicies.Pvm"/> whatever the host (to try a PVM guest's view elsewhere).</summary>
    Pvm,

    /// <summary>Nothing: KVM's supported CPUID, with only the explicit masks applied.</summary>
    None,
}

/// <summary>A CPUID feature a policy hides, the bits that announce it, and why.</summary>
/// <param name="Name">The feature's usual name (as in /proc/cpuinfo).</param>
/// <param name="Mask">The bits cleared.</param>
/// <param name="Reason">What a kernel would do with it that this host cannot run.</param>
public readonly record struct HiddenCpuidFeature(string Name, CpuidMask Mask, string Reason);

/// <summary>The features <see cref="CpuidPolicy"/> hides.</summary>
public static class CpuidPolicies
{
    private const uint KvmFeatures = 0x4000_0001;

    /// <summary>
    /// What a kernel picks through CPUID (alternatives, feature checks) and then cannot run on PVM, where guest CPL0
    /// code goes through KVM's instruction emulator: the instructions it lacks (DESIGN.md, issue 8: the probe of
    /// ~165 instructions) and the KVM paravirtual features that lead to <c>vmcall</c>, which livelocks KVM_RUN there.
    /// Hidden even where an emulation fallback could finish the instruction when a kernel would execute it often
    /// (CX16: about 60 000 times before /init). Not hidden: what a kernel needs regardless (x87/SSE2, fxsave) or what
    /// the fallback covers without a hot path (the XSAVE family, xgetbv).
    /// </summary>
    public static IReadOnlyList<HiddenCpuidFeature> Pvm { get; } =
    [
        Hide("cx16", 1, null, CpuidRegister.Ecx, 1u << 13, "cmpxchg16b (SLUB's per-CPU freelists, ~60 000 times at boot) is not emulated"),
        Hide("sse4_2", 1, null, CpuidRegister.Ecx, 1u << 20, "crc32 (crc32c-intel) is not emulated"),
        Hide("popcnt", 1, null, CpuidRegister.Ecx, 1u << 23, "popcnt (hweight) is not emulated"),
        Hide("aes", 1, null, CpuidRegister.Ecx, 1u << 25, "AES-NI (aesni-intel, the crypto self-tests) is SSE arithmetic, not emulated"),
        Hide("pclmulqdq", 1, null, CpuidRegister.Ecx, 1u << 1, "pclmulqdq (crc and GHASH drivers) is SSE arithmetic, not emulated"),
        Hide("avx", 1, null, CpuidRegister.Ecx, 1u << 28, "AVX crypto and RAID code is not emulated"),
        Hide("invpcid", 7, 0, CpuidRegister.Ebx, 1u << 10, "invpcid (TLB flushes) is not emulated"),
        Hide("smap", 7, 0, CpuidRegister.Ebx, 1u << 20, "clac/stac (every user-memory access) are not emulated"),
        Hide("clwb", 7, 0, CpuidRegister.Ebx, 1u << 24, "clwb is not emulated"),
        Hide("pku", 7, 0, CpuidRegister.Ecx, 1u << 3, "rdpkru/wrpkru (context switches) are not emulated"),
        Hide("rdtscp", 0x8000_0001, null, CpuidRegister.Edx, 1u << 27, "rdtscp (rdtsc_ordered, every kvmclock read) is not emulated"),
        Hide("kvm-pv-unhalt", KvmFeatures, null, CpuidRegister.Eax, 1u << 7, "paravirtual spinlock kicks are a vmcall, which livelocks KVM_RUN"),
        Hide("kvm-pv-send-ipi", KvmFeatures, null, CpuidRegister.Eax, 1u << 11, "paravirtual IPIs are a vmcall"),
        Hide("kvm-pv-sched-yield", KvmFeatures, null, CpuidRegister.Eax, 1u << 13, "paravirtual yield is a vmcall"),
        Hide("kvm-hc-map-gpa-range", KvmFeatures, null, CpuidRegister.Eax, 1u << 16, "the page-encryption hypercall is a vmcall"),
        Hide("kvm-migration-control", KvmFeatures, null, CpuidRegister.Eax, 1u << 17, "it reports page encryption status by the same vmcall"),
    ];

    /// <summary>The features <paramref name="policy"/> hides on a host of <paramref name="host"/>.</summary>
    public static IReadOnlyList<HiddenCpuidFeature> Hidden(CpuidPolicy policy, HostVirtualizationKind host) => policy switch
    {
        CpuidPolicy.Auto => host == HostVirtualizationKind.Pvm ? Pvm : [],
        CpuidPolicy.Pvm => Pvm,
        CpuidPolicy.None => [],
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, "not a CPUID policy"),
    };

    private static HiddenCpuidFeature Hide(string name, uint leaf, uint? subleaf, CpuidRegister register, uint bits, string reason)
        => new(name, new CpuidMask(leaf, subleaf, register, bits), reason);
}
