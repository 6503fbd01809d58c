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
    /// (including its paravirtual leaves at 0x40000000), with the APIC ids set and <paramref name="masks"/> applied.
    /// </summary>
    public static KvmCpuidEntry[] ForVcpu(ReadOnlySpan<KvmCpuidEntry> supported, int apicId, int cpuCount, IReadOnlyList<CpuidMask>? masks = null)
    {
        KvmCpuidEntry[] entries = supported.ToArray();
        for (int i = 0; i < entries.Length; i++)
        {
            ref KvmCpuidEntry e = ref entries[i];
            switch (e.Function)
            {
                case 1:
                    // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
                    e.Ebx = (e.Ebx & 0x0000ffff) | ((uint)apicId << 24) | ((uint)Math.Min(cpuCount, 255) << 16);
                    e.Edx = cpuCount > 1 ? e.Edx | (1u << 28) : e.Edx;
                    break;
                case 0xb:
                case 0x1f:
                    e.Edx = (uint)apicId; // x2APIC id
                    break;
            }
            if (masks is null)
            {
                continue;
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
        return entries;
    }
}
