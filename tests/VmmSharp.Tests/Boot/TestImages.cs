using System.Buffers.Binary;

namespace VmmSharp.Tests.Boot;

/// <summary>Builds kernel images byte by byte, so the tests need no binary blobs.</summary>
internal static class TestImages
{
    /// <summary>A byte pattern that is easy to recognise in guest memory.</summary>
    public static byte[] Pattern(int length, byte seed = 1)
    {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 7) + seed);
        }
        return bytes;
    }

    /// <summary>A Multiboot header with a valid checksum, and the address fields when <paramref name="addresses"/> is given.</summary>
    public static byte[] MultibootHeader(uint flags, (uint Header, uint Load, uint LoadEnd, uint BssEnd, uint Entry)? addresses = null)
    {
        byte[] h = new byte[addresses is null ? 12 : 32];
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0x1BADB002);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), unchecked(0u - 0x1BADB002 - flags));
        if (addresses is { } a)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(12), a.Header);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(16), a.Load);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(20), a.LoadEnd);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(24), a.BssEnd);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(28), a.Entry);
        }
        return h;
    }

    /// <summary>The bytes of one ELF note (4-byte aligned name and descriptor).</summary>
    public static byte[] Note(string name, uint type, byte[] desc)
    {
        byte[] nameBytes = [.. System.Text.Encoding.ASCII.GetBytes(name), 0];
        int nameLen = (nameBytes.Length + 3) & ~3;
        int descLen = (desc.Length + 3) & ~3;
        byte[] note = new byte[12 + nameLen + descLen];
        BinaryPrimitives.WriteUInt32LittleEndian(note, (uint)nameBytes.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(4), (uint)desc.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(8), type);
        nameBytes.CopyTo(note, 12);
        desc.CopyTo(note, 12 + nameLen);
        return note;
    }

    /// <summary>The Xen PVH entry note with an 8-byte (ELF64-style) or 4-byte value.</summary>
    public static byte[] PvhNote(ulong entry, int descSize = 8)
    {
        byte[] desc = new byte[descSize];
        if (descSize == 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(desc, entry);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(desc, (uint)entry);
        }
        return Note("Xen", 18, desc);
    }

    /// <summary>
    /// A fake bzImage: boot sector and setup sectors with a setup header of the chosen values, then
    /// <paramref name="payloadSize"/> bytes of protected-mode "kernel" in a recognisable pattern.
    /// </summary>
    public static byte[] BzImage(
        ushort version = 0x20f,
        ushort xloadflags = 0x1,
        byte setupSects = 4,
        bool relocatable = true,
        ulong prefAddress = 0x1000000,
        uint initSize = 0x20000,
        uint cmdlineSize = 2047,
        uint initrdAddrMax = 0x7fffffff,
        byte loadflags = 0x1,
        int payloadSize = 0x3000)
    {
        int sects = setupSects == 0 ? 4 : setupSects;
        byte[] image = new byte[((sects + 1) * 512) + payloadSize];
        Span<byte> s = image;
        s[0x1f1] = setupSects;
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x1fe..], 0xAA55);
        s[0x200] = 0xeb;
        s[0x201] = 0x6a; // the header runs to 0x26c
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x202..], 0x53726448);
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x206..], version);
        s[0x211] = loadflags;
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x214..], 0x100000);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x22c..], initrdAddrMax);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x230..], 0x200000);
        s[0x234] = relocatable ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x236..], xloadflags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x238..], cmdlineSize);
        BinaryPrimitives.WriteUInt64LittleEndian(s[0x258..], prefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x260..], initSize);
        Pattern(payloadSize, 3).CopyTo(s[((sects + 1) * 512)..]);
        return image;
    }
}

/// <summary>Builds a little-endian x86 ELF32 or ELF64 executable with chosen segments and notes.</summary>
internal sealed class ElfBuilder(bool is64 = true)
{
    private readonly List<(uint Type, uint Flags, ulong VAddr, ulong PAddr, byte[] Data, ulong MemSize)> _segments = [];

    public ushort Machine { get; set; } = is64 ? (ushort)62 : (ushort)3;

    public ulong Entry { get; set; }

    public byte DataEncoding { get; set; } = 1;

    public ElfBuilder Load(ulong paddr, byte[] data, ulong memSize = 0, ulong? vaddr = null, uint flags = 5)
    {
        _segments.Add((1, flags, vaddr ?? paddr, paddr, data, Math.Max(memSize, (ulong)data.Length)));
        return this;
    }

    public ElfBuilder Notes(byte[] notes)
    {
        _segments.Add((4, 4, 0, 0, notes, (ulong)notes.Length));
        return this;
    }

    /// <summary>The file offset the i-th segment's data lands at.</summary>
    public int DataOffset(int index)
    {
        int offset = Align(HeaderSize + (_segments.Count * PhdrSize));
        for (int i = 0; i < index; i++)
        {
            offset = Align(offset + _segments[i].Data.Length);
        }
        return offset;
    }

    public int HeaderSize => is64 ? 64 : 52;

    public int PhdrSize => is64 ? 56 : 32;

    public byte[] Build()
    {
        int total = DataOffset(_segments.Count);
        byte[] file = new byte[total];
        Span<byte> f = file;
        "\u007fELF"u8.CopyTo(f);
        f[4] = is64 ? (byte)2 : (byte)1;
        f[5] = DataEncoding;
        f[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(f[16..], 2); // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(f[18..], Machine);
        BinaryPrimitives.WriteUInt32LittleEndian(f[20..], 1);
        if (is64)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(f[24..], Entry);
            BinaryPrimitives.WriteUInt64LittleEndian(f[32..], (ulong)HeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[52..], (ushort)HeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[54..], (ushort)PhdrSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[56..], (ushort)_segments.Count);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(f[24..], (uint)Entry);
            BinaryPrimitives.WriteUInt32LittleEndian(f[28..], (uint)HeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[40..], (ushort)HeaderSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[42..], (ushort)PhdrSize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[44..], (ushort)_segments.Count);
        }
        for (int i = 0; i < _segments.Count; i++)
        {
            var s = _segments[i];
            int offset = DataOffset(i);
            s.Data.CopyTo(f[offset..]);
            Span<byte> p = f[(HeaderSize + (i * PhdrSize))..];
            if (is64)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(p, s.Type);
                BinaryPrimitives.WriteUInt32LittleEndian(p[4..], s.Flags);
                BinaryPrimitives.WriteUInt64LittleEndian(p[8..], (ulong)offset);
                BinaryPrimitives.WriteUInt64LittleEndian(p[16..], s.VAddr);
                BinaryPrimitives.WriteUInt64LittleEndian(p[24..], s.PAddr);
                BinaryPrimitives.WriteUInt64LittleEndian(p[32..], (ulong)s.Data.Length);
                BinaryPrimitives.WriteUInt64LittleEndian(p[40..], s.MemSize);
                BinaryPrimitives.WriteUInt64LittleEndian(p[48..], 16);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(p, s.Type);
                BinaryPrimitives.WriteUInt32LittleEndian(p[4..], (uint)offset);
                BinaryPrimitives.WriteUInt32LittleEndian(p[8..], (uint)s.VAddr);
                BinaryPrimitives.WriteUInt32LittleEndian(p[12..], (uint)s.PAddr);
                BinaryPrimitives.WriteUInt32LittleEndian(p[16..], (uint)s.Data.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(p[20..], (uint)s.MemSize);
                BinaryPrimitives.WriteUInt32LittleEndian(p[24..], s.Flags);
                BinaryPrimitives.WriteUInt32LittleEndian(p[28..], 16);
            }
        }
        return file;
    }

    private static int Align(int n) => (n + 15) & ~15;
}
