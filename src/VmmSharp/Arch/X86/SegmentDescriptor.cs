namespace VmmSharp.Arch.X86;

/// <summary>
/// A segment register's full state, as the CPU caches it from a GDT descriptor (and as KVM's <c>kvm_segment</c> holds it).
/// </summary>
/// <param name="Selector">The selector: GDT index × 8, with TI and RPL zero here.</param>
/// <param name="Base">The segment base.</param>
/// <param name="Limit">The limit in bytes (already scaled by 4 KiB when <paramref name="Granularity"/> is set), e.g. 0xffffffff for flat.</param>
/// <param name="Type">The 4-bit type: 0xb execute/read accessed code, 0x3 read/write accessed data, 0xb busy TSS when <paramref name="CodeOrData"/> is false.</param>
/// <param name="Present">The P bit.</param>
/// <param name="Dpl">The descriptor privilege level, 0–3.</param>
/// <param name="DefaultBig">The D/B bit: 32-bit default operand size.</param>
/// <param name="CodeOrData">The S bit: a code or data segment rather than a system one (TSS).</param>
/// <param name="LongMode">The L bit: a 64-bit code segment.</param>
/// <param name="Granularity">The G bit: the descriptor's 20-bit limit counts 4 KiB units.</param>
public readonly record struct SegmentDescriptor(
    ushort Selector, ulong Base, uint Limit, byte Type, bool Present, byte Dpl, bool DefaultBig, bool CodeOrData, bool LongMode, bool Granularity)
{
    /// <summary>Execute/read code, accessed.</summary>
    public const byte CodeType = 0xb;

    /// <summary>Read/write data, accessed.</summary>
    public const byte DataType = 0x3;

    /// <summary>A busy 32-bit TSS (in long mode, a busy 64-bit TSS); KVM refuses a TR that is not busy.</summary>
    public const byte BusyTssType = 0xb;

    /// <summary>The size of a TSS without an I/O bitmap, minus one: the limit the PVH ABI asks for.</summary>
    public const uint TssLimit = 0x67;

    /// <summary>A flat 4 GiB 32-bit code segment.</summary>
    public static SegmentDescriptor FlatCode32(ushort selector) => new(selector, 0, 0xffff_ffff, CodeType, true, 0, true, true, false, true);

    /// <summary>A 64-bit code segment (L set, D clear).</summary>
    public static SegmentDescriptor Code64(ushort selector) => new(selector, 0, 0xffff_ffff, CodeType, true, 0, false, true, true, true);

    /// <summary>A flat 4 GiB read/write data segment.</summary>
    public static SegmentDescriptor FlatData(ushort selector) => new(selector, 0, 0xffff_ffff, DataType, true, 0, true, true, false, true);

    /// <summary>A busy TSS at <paramref name="tssBase"/> with limit <see cref="TssLimit"/>.</summary>
    public static SegmentDescriptor BusyTss(ushort selector, ulong tssBase) => new(selector, tssBase, TssLimit, BusyTssType, true, 0, false, false, false, false);

    /// <summary>
    /// The 8-byte GDT entry for this descriptor. A system descriptor in long mode (a 64-bit TSS) takes 16 bytes:
    /// this is its low half, and <see cref="Base"/> bits 32–63 form the high half.
    /// </summary>
    /// <exception cref="InvalidOperationException">The limit cannot be encoded with this granularity.</exception>
    public ulong ToGdtEntry()
    {
        uint raw = Granularity ? Limit >> 12 : Limit;
        if (raw > 0xfffff || (Granularity && (Limit & 0xfff) != 0xfff))
        {
            throw new InvalidOperationException($"segment limit 0x{Limit:x} cannot be encoded with granularity {(Granularity ? "4 KiB" : "1 byte")}");
        }
        return (raw & 0xffff)
            | ((Base & 0xff_ffff) << 16)
            | ((ulong)(Type & 0xf) << 40)
            | (CodeOrData ? 1UL << 44 : 0)
            | ((ulong)(Dpl & 3) << 45)
            | (Present ? 1UL << 47 : 0)
            | ((ulong)(raw >> 16) << 48)
            | (LongMode ? 1UL << 53 : 0)
            | (DefaultBig ? 1UL << 54 : 0)
            | (Granularity ? 1UL << 55 : 0)
            | (((Base >> 24) & 0xff) << 56);
    }

    /// <summary>Decodes an 8-byte GDT entry loaded through <paramref name="selector"/> (base bits 0–31 only).</summary>
    public static SegmentDescriptor FromGdtEntry(ushort selector, ulong entry)
    {
        uint raw = (uint)(entry & 0xffff) | (uint)((entry >> 48) & 0xf) << 16;
        bool g = (entry & (1UL << 55)) != 0;
        return new SegmentDescriptor(
            selector,
            ((entry >> 16) & 0xff_ffff) | (((entry >> 56) & 0xff) << 24),
            g ? (raw << 12) | 0xfff : raw,
            (byte)((entry >> 40) & 0xf),
            (entry & (1UL << 47)) != 0,
            (byte)((entry >> 45) & 3),
            (entry & (1UL << 54)) != 0,
            (entry & (1UL << 44)) != 0,
            (entry & (1UL << 53)) != 0,
            g);
    }
}
