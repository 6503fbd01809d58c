using System.Globalization;
using VmmSharp.Kvm;

namespace VmmSharp.Arch.X86;

/// <summary>A CPUID register.</summary>
public enum CpuidRegister
{
    /// <summary>EAX.</summary>
    Eax,

    /// <summary>EBX.</summary>
    Ebx,

    /// <summary>ECX.</summary>
    Ecx,

    /// <summary>EDX.</summary>
    Edx,
}

/// <summary>
/// Bits to clear in one CPUID leaf, to hide a feature from the guest. Written as
/// <c>LEAF[.SUBLEAF]:REGISTER:MASK</c>, e.g. <c>0x7.0:ebx:0x20</c> hides AVX2 and
/// <c>1:ecx:0x80000000</c> hides the hypervisor bit.
/// </summary>
/// <param name="Function">The leaf.</param>
/// <param name="Index">The subleaf, or null for every subleaf.</param>
/// <param name="Register">The register.</param>
/// <param name="Bits">The bits to clear.</param>
public readonly record struct CpuidMask(uint Function, uint? Index, CpuidRegister Register, uint Bits)
{
    /// <summary>Parses <c>LEAF[.SUBLEAF]:REGISTER:MASK</c> (numbers in decimal or 0x-hex).</summary>
    /// <exception cref="FormatException">The text is not in that form; the message quotes it.</exception>
    public static CpuidMask Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] parts = text.Split(':');
        if (parts.Length != 3)
        {
            throw new FormatException($"CPUID mask '{text}' is not LEAF[.SUBLEAF]:REGISTER:MASK, e.g. 0x7.0:ebx:0x20");
        }
        string[] leaf = parts[0].Split('.');
        if (leaf.Length > 2 || !Enum.TryParse(parts[1], ignoreCase: true, out CpuidRegister register))
        {
            throw new FormatException($"CPUID mask '{text}': expected a leaf like 0x7 or 0x7.0 and a register eax, ebx, ecx or edx");
        }
        return new CpuidMask(Number(leaf[0], text), leaf.Length == 2 ? Number(leaf[1], text) : null, register, Number(parts[2], text));
    }

    private static uint Number(string s, string text)
    {
        bool ok = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? uint.TryParse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint v)
            : uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        return ok ? v : throw new FormatException($"CPUID mask '{text}': '{s}' is not a number");
    }
}

/// <summary>Builds the CPUID a vCPU presents from what KVM supports.</summary>
public static class Cpuid
{
    /// <summary>
    /// The leaves for vCPU <paramref name="apicId"/> of <paramref name="cpuCount"/>: KVM's supported leaves
    /// (including its paravirtual leaves at 0x40000000), with the host's topology replaced by one package of
    /// <paramref name="cpuCount"/> single-threaded cores (leaves 1, 4, 0xB, 0x1F; on AMD 0x8000_0008, 0x8000_001D,
    /// 0x8000_001E), this vCPU's APIC id in them, and <paramref name="masks"/> applied.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">
    /// <paramref name="cpuCount"/> is not 1 to 255, or <paramref name="apicId"/> is not below it.
    /// </exception>
    public static KvmCpuidEntry[] ForVcpu(ReadOnlySpan<KvmCpuidEntry> supported, int apicId, int cpuCount, IReadOnlyList<CpuidMask>? masks = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cpuCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(cpuCount, 255);
        ArgumentOutOfRangeException.ThrowIfNegative(apicId);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(apicId, cpuCount);
        var topology = new CpuidTopology(apicId, cpuCount);
        bool amd = CpuidTopology.IsAmd(supported);
        var entries = new List<KvmCpuidEntry>(supported.Length + 4);
        var replaced = new HashSet<uint>();
        foreach (KvmCpuidEntry s in supported)
        {
            if (CpuidTopology.IsExtendedTopologyLeaf(s.Function))
            {
                // The host's subleaves (its levels, its counts) go; ours take the place of the first.
                if (replaced.Add(s.Function))
                {
                    topology.ExtendedTopology(s.Function, entries);
                }
                continue;
            }
            KvmCpuidEntry e = s;
            topology.Apply(ref e, amd);
            entries.Add(e);
        }
        KvmCpuidEntry[] result = [.. entries];
        foreach (ref KvmCpuidEntry e in result.AsSpan())
        {
            Mask(ref e, masks);
        }
        return result;
    }

    private static void Mask(ref KvmCpuidEntry e, IReadOnlyList<CpuidMask>? masks)
    {
        if (masks is null)
        {
            return;
        }
        foreach (CpuidMask m in masks)
        {
            if (m.Function != e.Function || (m.Index is { } index && index != e.Index))
            {
                continue;
            }
            switch (m.Register)
            {
                case CpuidRegister.Eax: e.Eax &= ~m.Bits; break;
                case CpuidRegister.Ebx: e.Ebx &= ~m.Bits; break;
                case CpuidRegister.Ecx: e.Ecx &= ~m.Bits; break;
                default: e.Edx &= ~m.Bits; break;
            }
        }
    }
}
