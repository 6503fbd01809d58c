using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VmmSharp.Boot;

/// <summary>The Multiboot 0.6.96 header (section 3.1.1), as it lies in the kernel image.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct MultibootHeader
{
    /// <summary>The header magic.</summary>
    public const uint HeaderMagic = 0x1BADB002;

    /// <summary>The value EAX holds at entry, telling the kernel a Multiboot loader started it.</summary>
    public const uint BootloaderMagic = 0x2BADB002;

    /// <summary>Flag bit 0: align modules on 4 KiB pages.</summary>
    public const uint FlagPageAlignModules = 1 << 0;

    /// <summary>Flag bit 1: provide mem_* and mmap_*.</summary>
    public const uint FlagMemoryInfo = 1 << 1;

    /// <summary>Flag bit 2: provide a video mode table (optional for us: we have no framebuffer to describe).</summary>
    public const uint FlagVideoMode = 1 << 2;

    /// <summary>Flag bit 16: the address fields are valid (the "a.out kludge"): load by them instead of as ELF.</summary>
    public const uint FlagAddressFields = 1 << 16;

    /// <summary>How far into the image the header may start.</summary>
    public const int SearchLimit = 8192;

    /// <summary>magic.</summary>
    public uint Magic;

    /// <summary>flags.</summary>
    public uint Flags;

    /// <summary>checksum: magic + flags + checksum = 0 (mod 2^32).</summary>
    public uint Checksum;

    /// <summary>header_addr: the physical address the header's magic field loads to.</summary>
    public uint HeaderAddress;

    /// <summary>load_addr: the physical address the text segment starts at.</summary>
    public uint LoadAddress;

    /// <summary>load_end_addr: the end of the data segment; 0 means the rest of the file.</summary>
    public uint LoadEndAddress;

    /// <summary>bss_end_addr: the end of the bss, zeroed by the loader; 0 means no bss.</summary>
    public uint BssEndAddress;

    /// <summary>entry_addr: where to jump.</summary>
    public uint EntryAddress;

    /// <summary>The header's size up to and including the address fields.</summary>
    public const int AddressFieldsEnd = 32;

    /// <summary>
    /// The offset of the first Multiboot header with a valid checksum, or −1. Also reports the first magic whose
    /// checksum failed (offset, or −1, and the bad sum), for error messages.
    /// </summary>
    public static int Find(ReadOnlySpan<byte> image, out int badMagicOffset, out uint badSum)
    {
        badMagicOffset = -1;
        badSum = 0;
        int limit = Math.Min(image.Length, SearchLimit);
        for (int at = 0; at + 12 <= limit; at += 4)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(image[at..]) != HeaderMagic)
            {
                continue;
            }
            uint sum = unchecked(HeaderMagic + BinaryPrimitives.ReadUInt32LittleEndian(image[(at + 4)..]) + BinaryPrimitives.ReadUInt32LittleEndian(image[(at + 8)..]));
            if (sum == 0)
            {
                return at;
            }
            if (badMagicOffset < 0)
            {
                badMagicOffset = at;
                badSum = sum;
            }
        }
        return -1;
    }

    /// <summary>Reads the header at <paramref name="offset"/>; the address fields are read only when the file holds them.</summary>
    public static MultibootHeader Read(ReadOnlySpan<byte> image, int offset)
    {
        Span<byte> raw = stackalloc byte[Unsafe.SizeOf<MultibootHeader>()];
        raw.Clear();
        ReadOnlySpan<byte> available = image[offset..];
        available[..Math.Min(available.Length, raw.Length)].CopyTo(raw);
        return MemoryMarshal.Read<MultibootHeader>(raw);
    }
}
