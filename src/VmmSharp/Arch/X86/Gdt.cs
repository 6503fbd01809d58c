using VmmSharp.Memory;

namespace VmmSharp.Arch.X86;

/// <summary>
/// The boot GDT. Slots follow Linux's boot protocol, which asks for <c>__BOOT_CS</c> = 0x10 and
/// <c>__BOOT_DS</c> = 0x18; the TSS follows and takes two slots so a 64-bit TSS descriptor fits.
/// </summary>
internal static class Gdt
{
    public const ushort CodeSelector = 0x10;
    public const ushort DataSelector = 0x18;
    public const ushort TssSelector = 0x20;
    public const int EntryCount = 6;
    public const ushort Limit = EntryCount * 8 - 1;

    /// <summary>Writes the GDT holding <paramref name="code"/>, <paramref name="data"/> and <paramref name="tss"/> at <see cref="Layout.Gdt"/>.</summary>
    public static void Write(GuestMemory memory, SegmentDescriptor code, SegmentDescriptor data, SegmentDescriptor tss)
    {
        Span<ulong> entries = stackalloc ulong[EntryCount];
        entries.Clear();
        entries[CodeSelector / 8] = code.ToGdtEntry();
        entries[DataSelector / 8] = data.ToGdtEntry();
        entries[TssSelector / 8] = tss.ToGdtEntry();
        // The high half of a long-mode system descriptor: base bits 32-63; zero for a 32-bit TSS, where the slot is unused.
        entries[(TssSelector / 8) + 1] = tss.Base >> 32;
        for (int i = 0; i < EntryCount; i++)
        {
            memory.Write(Layout.Gdt + (ulong)(i * 8), entries[i]);
        }
    }
}
