using System.Runtime.Intrinsics.X86;

namespace VmmSharp.Emulation;

/// <summary>
/// Where each XSAVE state component lives: the standard-format offsets and sizes (CPUID leaf 0xD, the layout
/// KVM_GET_XSAVE uses), and the compacted-format offsets that <c>xsavec</c>/<c>xsaves</c> produce for a given mask.
/// </summary>
internal static class XsaveLayout
{
    /// <summary>The legacy FXSAVE region plus the 64-byte header.</summary>
    public const int HeaderEnd = 576;

    /// <summary>The header's offset.</summary>
    public const int Header = 512;

    private static readonly (int Offset, int Size, bool Align64)[] Components = Read();

    /// <summary>The standard-format offset of component <paramref name="i"/> (≥ 2).</summary>
    public static int StandardOffset(int i) => Components[i].Offset;

    /// <summary>The size of component <paramref name="i"/> (≥ 2); 0 where the host has none.</summary>
    public static int Size(int i) => Components[i].Size;

    /// <summary>Whether the standard layout of component <paramref name="i"/> fits in KVM's 4 KiB area.</summary>
    public static bool Known(int i) => i >= 2 && i < 63 && Components[i].Size > 0 && Components[i].Offset + Components[i].Size <= 4096;

    /// <summary>The compacted-format offset of component <paramref name="i"/> when the components in <paramref name="mask"/> are saved.</summary>
    public static int CompactedOffset(ulong mask, int i)
    {
        int offset = HeaderEnd;
        for (int j = 2; j <= i; j++)
        {
            if ((mask & (1UL << j)) == 0)
            {
                continue;
            }
            if (Components[j].Align64)
            {
                offset = (offset + 63) & ~63;
            }
            if (j == i)
            {
                return offset;
            }
            offset += Components[j].Size;
        }
        return offset;
    }

    /// <summary>The area size for <paramref name="mask"/>: compacted or standard.</summary>
    public static int AreaSize(ulong mask, bool compacted)
    {
        int end = HeaderEnd;
        for (int i = 2; i < 63; i++)
        {
            if ((mask & (1UL << i)) != 0 && Known(i))
            {
                end = Math.Max(end, (compacted ? CompactedOffset(mask, i) : Components[i].Offset) + Components[i].Size);
            }
        }
        return end;
    }

    private static (int, int, bool)[] Read()
    {
        var components = new (int, int, bool)[64];
        if (!X86Base.IsSupported || X86Base.CpuId(0, 0).Eax < 0xd)
        {
            return components;
        }
        for (int i = 2; i < 63; i++)
        {
            (int eax, int ebx, int ecx, _) = X86Base.CpuId(0xd, i);
            components[i] = (ebx, eax, (ecx & 2) != 0);
        }
        return components;
    }
}
