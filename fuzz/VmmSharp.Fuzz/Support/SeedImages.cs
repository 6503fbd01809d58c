using System.Buffers.Binary;

namespace VmmSharp.Fuzz.Support;

/// <summary>Minimal kernel images for the boot targets' seed corpora: each is a few hundred bytes that a loader accepts.</summary>
internal static class SeedImages
{
    public const uint LoadAddress = 0x10_0000;
    public const ushort MachineI386 = 3;
    public const ushort MachineX8664 = 62;
    private const uint PtLoad = 1;
    private const uint PtNote = 4;
    private const uint PfX = 1;
    private const uint XenElfNotePhys32Entry = 18;
    private const uint MultibootMagic = 0x1BADB002;

    /// <summary>A few bytes of "code": hlt; jmp $-1.</summary>
    public static byte[] Code => [0xf4, 0xeb, 0xfd, 0x90];

    /// <summary>One ELF segment for <see cref="Elf"/>.</summary>
    public readonly record struct Segment(uint Type, uint Flags, ulong Address, byte[] Data, ulong MemorySize);

    public static Segment Load(byte[] data, ulong memorySize = 0, ulong address = LoadAddress) =>
        new(PtLoad, PfX, address, data, Math.Max(memorySize, (ulong)data.Length));

    public static Segment Note(byte[] notes) => new(PtNote, 0, 0, notes, 0);

    /// <summary>A Xen note holding the 32-bit PVH entry point, as Linux emits it (8 bytes in a 64-bit kernel).</summary>
    public static byte[] PvhNote(ulong entry = LoadAddress, int width = 8)
    {
        byte[] note = new byte[12 + 4 + width];
        BinaryPrimitives.WriteUInt32LittleEndian(note, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(4), (uint)width);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(8), XenElfNotePhys32Entry);
        "Xen\0"u8.CopyTo(note.AsSpan(12));
        if (width == 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(note.AsSpan(16), entry);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(16), (uint)entry);
        }
        return note;
    }

    /// <summary>A note of another owner, which parsers must step over.</summary>
    public static byte[] OtherNote() =>
        [5, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, (byte)'L', (byte)'i', (byte)'n', (byte)'u', (byte)'x', 0, 0, 0, 1, 2, 3, 4];

    /// <summary>An ELF executable: header, program headers, then each segment's bytes.</summary>
    public static byte[] Elf(bool is64, ushort machine, ulong entry, params Segment[] segments)
    {
        int headerSize = is64 ? 64 : 52;
        int phentsize = is64 ? 56 : 32;
        int dataAt = headerSize + (phentsize * segments.Length);
        int total = dataAt + segments.Sum(s => (s.Data.Length + 3) & ~3);
        byte[] image = new byte[total];
        Span<byte> h = image;
        "\u007fELF"u8.CopyTo(h);
        h[4] = (byte)(is64 ? 2 : 1);
        h[5] = 1; // little-endian
        h[6] = 1; // EV_CURRENT
        BinaryPrimitives.WriteUInt16LittleEndian(h[16..], 2); // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(h[18..], machine);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);
        if (is64)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(h[24..], entry);
            BinaryPrimitives.WriteUInt64LittleEndian(h[32..], (ulong)headerSize);
            BinaryPrimitives.WriteUInt16LittleEndian(h[52..], (ushort)headerSize);
            BinaryPrimitives.WriteUInt16LittleEndian(h[54..], (ushort)phentsize);
            BinaryPrimitives.WriteUInt16LittleEndian(h[56..], (ushort)segments.Length);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(h[24..], (uint)entry);
            BinaryPrimitives.WriteUInt32LittleEndian(h[28..], (uint)headerSize);
            BinaryPrimitives.WriteUInt16LittleEndian(h[40..], (ushort)headerSize);
            BinaryPrimitives.WriteUInt16LittleEndian(h[42..], (ushort)phentsize);
            BinaryPrimitives.WriteUInt16LittleEndian(h[44..], (ushort)segments.Length);
        }
        int offset = dataAt;
        for (int i = 0; i < segments.Length; i++)
        {
            Segment s = segments[i];
            Span<byte> p = image.AsSpan(headerSize + (i * phentsize));
            if (is64)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(p, s.Type);
                BinaryPrimitives.WriteUInt32LittleEndian(p[4..], s.Flags);
                BinaryPrimitives.WriteUInt64LittleEndian(p[8..], (ulong)offset);
                BinaryPrimitives.WriteUInt64LittleEndian(p[16..], s.Address);
                BinaryPrimitives.WriteUInt64LittleEndian(p[24..], s.Address);
                BinaryPrimitives.WriteUInt64LittleEndian(p[32..], (ulong)s.Data.Length);
                BinaryPrimitives.WriteUInt64LittleEndian(p[40..], s.MemorySize);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(p, s.Type);
                BinaryPrimitives.WriteUInt32LittleEndian(p[4..], (uint)offset);
                BinaryPrimitives.WriteUInt32LittleEndian(p[8..], (uint)s.Address);
                BinaryPrimitives.WriteUInt32LittleEndian(p[12..], (uint)s.Address);
                BinaryPrimitives.WriteUInt32LittleEndian(p[16..], (uint)s.Data.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(p[20..], (uint)s.MemorySize);
                BinaryPrimitives.WriteUInt32LittleEndian(p[24..], s.Flags);
            }
            s.Data.CopyTo(image.AsSpan(offset));
            offset += (s.Data.Length + 3) & ~3;
        }
        return image;
    }

    /// <summary>A PVH kernel: ELF64 with one loadable segment and the Xen entry note.</summary>
    public static byte[] PvhElf(int noteWidth = 8) =>
        Elf(true, MachineX8664, LoadAddress, Load(Code, 0x2000), Note([.. OtherNote(), .. PvhNote(LoadAddress, noteWidth)]));

    /// <summary>A Multiboot header: magic, flags, checksum, and the address fields when flag 16 is set.</summary>
    public static byte[] MultibootHeader(uint flags, uint headerAddress = 0, uint loadAddress = 0, uint loadEnd = 0, uint bssEnd = 0, uint entry = 0)
    {
        bool addresses = (flags & 0x1_0000) != 0;
        byte[] header = new byte[addresses ? 32 : 12];
        BinaryPrimitives.WriteUInt32LittleEndian(header, MultibootMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), unchecked(0u - MultibootMagic - flags));
        if (addresses)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), headerAddress);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), loadAddress);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), loadEnd);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(24), bssEnd);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(28), entry);
        }
        return header;
    }

    /// <summary>A Multiboot kernel loaded by its header's address fields (the a.out kludge), with a bss.</summary>
    public static byte[] MultibootKludge() =>
        [.. MultibootHeader(0x1_0003, LoadAddress, LoadAddress, 0, LoadAddress + 0x3000, LoadAddress + 32), .. Code];

    /// <summary>A Multiboot kernel in ELF32, its header inside the loaded segment.</summary>
    public static byte[] MultibootElf() =>
        Elf(false, MachineI386, LoadAddress + 12, Load([.. MultibootHeader(0x3), .. Code], 0x2000));

    /// <summary>A bzImage: one setup sector with a protocol 2.15 header, then a protected-mode "kernel".</summary>
    public static byte[] BzImage(bool relocatable = true, ulong prefAddress = 0x100_0000, uint initSize = 0x1_0000)
    {
        byte[] image = new byte[0x400 + 0x400];
        Span<byte> s = image;
        s[0x1f1] = 1; // setup_sects: the kernel starts at 0x400
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x1fe..], 0xAA55);
        s[0x200] = 0xeb;
        s[0x201] = 0x26c - 0x202; // jmp over the header: its length
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x202..], 0x53726448); // "HdrS"
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x206..], 0x020f);
        s[0x211] = 0x01; // LOADED_HIGH
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x22c..], 0x7fff_ffff); // initrd_addr_max
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x230..], 0x20_0000); // kernel_alignment
        s[0x234] = (byte)(relocatable ? 1 : 0);
        s[0x235] = 21; // min_alignment: 2 MiB
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x236..], 0x0003); // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x238..], 0x7ff); // cmdline_size
        BinaryPrimitives.WriteUInt64LittleEndian(s[0x258..], prefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x260..], initSize);
        Code.CopyTo(s[0x600..]); // the 64-bit entry, at +0x200
        return image;
    }
}
