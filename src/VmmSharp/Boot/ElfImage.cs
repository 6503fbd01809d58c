using System.Buffers.Binary;
using VmmSharp.Memory;

namespace VmmSharp.Boot;

/// <summary>
/// A parsed little-endian x86 ELF32 or ELF64 executable: its entry and program headers, every offset and
/// size checked against the file before use. It keeps no reference to the bytes; methods take them again.
/// </summary>
public sealed class ElfImage
{
    /// <summary>EM_386.</summary>
    public const ushort MachineI386 = 3;

    /// <summary>EM_X86_64.</summary>
    public const ushort MachineX8664 = 62;

    /// <summary>The Xen note type of the 32-bit PVH entry point (xen/include/public/elfnote.h).</summary>
    public const uint XenElfNotePhys32Entry = 18;

    private const int IdentSize = 16;
    private const int Elf32HeaderSize = 52;
    private const int Elf64HeaderSize = 64;
    private const int Elf32PhdrSize = 32;
    private const int Elf64PhdrSize = 56;

    private ElfImage(bool is64, ushort machine, ulong entry, ElfProgramHeader[] headers)
    {
        Is64Bit = is64;
        Machine = machine;
        Entry = entry;
        ProgramHeaders = headers;
    }

    /// <summary>Whether the file is ELF64 (else ELF32).</summary>
    public bool Is64Bit { get; }

    /// <summary>e_machine.</summary>
    public ushort Machine { get; }

    /// <summary>e_entry, a virtual address.</summary>
    public ulong Entry { get; }

    /// <summary>The program headers, in file order.</summary>
    public IReadOnlyList<ElfProgramHeader> ProgramHeaders { get; }

    /// <summary>Whether <paramref name="image"/> starts with the ELF magic.</summary>
    public static bool HasElfMagic(ReadOnlySpan<byte> image) => image.Length >= 4 && image[..4].SequenceEqual("\u007fELF"u8);

    /// <summary>Parses the ELF header and program headers of <paramref name="image"/>.</summary>
    /// <exception cref="InvalidKernelImageException">Not ELF, not little-endian x86, or a header points outside the file.</exception>
    public static ElfImage Parse(ReadOnlySpan<byte> image)
    {
        if (!HasElfMagic(image))
        {
            throw new InvalidKernelImageException($"not an ELF file (first bytes: {KernelImage.Hex(image)})");
        }
        if (image.Length < IdentSize)
        {
            throw Truncated("the ELF identification", IdentSize, image.Length);
        }
        byte elfClass = image[4];
        if (elfClass is not (1 or 2))
        {
            throw new InvalidKernelImageException($"ELF class {elfClass} is neither ELF32 (1) nor ELF64 (2)");
        }
        if (image[5] != 1)
        {
            throw new InvalidKernelImageException($"ELF data encoding {image[5]} is not little-endian (1); only x86 images are supported");
        }
        bool is64 = elfClass == 2;
        int headerSize = is64 ? Elf64HeaderSize : Elf32HeaderSize;
        if (image.Length < headerSize)
        {
            throw Truncated($"the ELF{(is64 ? 64 : 32)} header", (ulong)headerSize, image.Length);
        }
        ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(image[18..]);
        if (machine is not (MachineI386 or MachineX8664))
        {
            throw new InvalidKernelImageException($"ELF machine {machine} is not x86 (EM_386 = {MachineI386} or EM_X86_64 = {MachineX8664})");
        }
        ulong entry = is64 ? BinaryPrimitives.ReadUInt64LittleEndian(image[24..]) : BinaryPrimitives.ReadUInt32LittleEndian(image[24..]);
        ulong phoff = is64 ? BinaryPrimitives.ReadUInt64LittleEndian(image[32..]) : BinaryPrimitives.ReadUInt32LittleEndian(image[28..]);
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(image[(is64 ? 54 : 42)..]);
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(image[(is64 ? 56 : 44)..]);
        int minPhentsize = is64 ? Elf64PhdrSize : Elf32PhdrSize;
        if (phnum > 0 && phentsize < minPhentsize)
        {
            throw new InvalidKernelImageException($"ELF program header size {phentsize} is smaller than the {minPhentsize} bytes an ELF{(is64 ? 64 : 32)} program header takes");
        }
        var headers = new ElfProgramHeader[phnum];
        for (int i = 0; i < phnum; i++)
        {
            ulong at = phoff + ((ulong)i * (ulong)phentsize);
            // Compared without adding to `at`, which a phoff near 2^64 would wrap round to a small number.
            if (at < phoff || at > (ulong)image.Length - (ulong)minPhentsize)
            {
                throw new InvalidKernelImageException(
                    $"kernel image truncated: ELF program header {i} at 0x{at:x} ends past the file's 0x{image.Length:x} bytes");
            }
            ReadOnlySpan<byte> p = image[(int)at..];
            headers[i] = is64
                ? new ElfProgramHeader(i, BinaryPrimitives.ReadUInt32LittleEndian(p), BinaryPrimitives.ReadUInt32LittleEndian(p[4..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(p[8..]), BinaryPrimitives.ReadUInt64LittleEndian(p[16..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(p[24..]), BinaryPrimitives.ReadUInt64LittleEndian(p[32..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(p[40..]))
                : new ElfProgramHeader(i, BinaryPrimitives.ReadUInt32LittleEndian(p), BinaryPrimitives.ReadUInt32LittleEndian(p[24..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(p[4..]), BinaryPrimitives.ReadUInt32LittleEndian(p[8..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(p[12..]), BinaryPrimitives.ReadUInt32LittleEndian(p[16..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(p[20..]));
            CheckSegment(headers[i], image.Length);
        }
        return new ElfImage(is64, machine, entry, headers);
    }

    /// <summary>The PVH entry point from a Xen note of type <see cref="XenElfNotePhys32Entry"/>, or null when there is none.</summary>
    /// <exception cref="InvalidKernelImageException">A note is malformed or the entry does not fit in 32 bits.</exception>
    public uint? FindPvhEntry(ReadOnlySpan<byte> image)
    {
        foreach (ElfProgramHeader ph in ProgramHeaders)
        {
            if (ph.Type != ElfProgramHeader.Note)
            {
                continue;
            }
            ReadOnlySpan<byte> notes = image.Slice((int)ph.Offset, (int)ph.FileSize);
            int pos = 0;
            while (pos + 12 <= notes.Length)
            {
                uint namesz = BinaryPrimitives.ReadUInt32LittleEndian(notes[pos..]);
                uint descsz = BinaryPrimitives.ReadUInt32LittleEndian(notes[(pos + 4)..]);
                uint type = BinaryPrimitives.ReadUInt32LittleEndian(notes[(pos + 8)..]);
                ulong nameAt = (ulong)pos + 12;
                ulong descAt = nameAt + Align4(namesz);
                ulong next = descAt + Align4(descsz);
                if (next > (ulong)notes.Length)
                {
                    throw new InvalidKernelImageException(
                        $"kernel image truncated: ELF note at 0x{ph.Offset + (ulong)pos:x} in program header {ph.Index} ends at 0x{ph.Offset + next:x}, past its segment's end at 0x{ph.Offset + ph.FileSize:x}");
                }
                if (type == XenElfNotePhys32Entry && namesz == 4 && notes.Slice((int)nameAt, 4).SequenceEqual("Xen\0"u8))
                {
                    ReadOnlySpan<byte> desc = notes.Slice((int)descAt, (int)descsz);
                    // Linux emits the entry with _ASM_PTR: 8 bytes in a 64-bit kernel, 4 in a 32-bit one.
                    ulong value = descsz switch
                    {
                        4 => BinaryPrimitives.ReadUInt32LittleEndian(desc),
                        8 => BinaryPrimitives.ReadUInt64LittleEndian(desc),
                        _ => throw new InvalidKernelImageException($"Xen PVH entry note has a {descsz}-byte value; expected 4 or 8"),
                    };
                    if (value > uint.MaxValue)
                    {
                        throw new InvalidKernelImageException($"Xen PVH entry point 0x{value:x} is not a 32-bit address");
                    }
                    return (uint)value;
                }
                pos = (int)next;
            }
        }
        return null;
    }

    /// <summary>
    /// Loads every PT_LOAD segment at its physical address, zeroing p_memsz − p_filesz, and returns the range
    /// [lowest, highest) the segments occupy.
    /// </summary>
    /// <exception cref="InvalidKernelImageException">There is nothing to load, or a segment lies outside RAM or below 1 MiB.</exception>
    public (ulong Start, ulong End) LoadSegments(GuestMemory memory, ReadOnlySpan<byte> image)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ulong low = ulong.MaxValue;
        ulong high = 0;
        foreach (ElfProgramHeader ph in ProgramHeaders)
        {
            if (ph.Type != ElfProgramHeader.Load || ph.MemorySize == 0)
            {
                continue;
            }
            if (ph.PhysicalAddress < Arch.X86.Layout.HighMemoryStart)
            {
                throw new InvalidKernelImageException(
                    $"ELF segment {ph.Index} loads at 0x{ph.PhysicalAddress:x}, below 0x{Arch.X86.Layout.HighMemoryStart:x} (1 MiB) where the boot tables live");
            }
            GuestPlacement.EnsureFits(memory, ph.PhysicalAddress, ph.MemorySize, $"ELF segment {ph.Index}");
            memory.Write(ph.PhysicalAddress, image.Slice((int)ph.Offset, (int)ph.FileSize));
            memory.Fill(ph.PhysicalAddress + ph.FileSize, ph.MemorySize - ph.FileSize, 0);
            low = Math.Min(low, ph.PhysicalAddress);
            high = Math.Max(high, ph.PhysicalAddress + ph.MemorySize);
        }
        if (high == 0)
        {
            throw new InvalidKernelImageException($"ELF image has no loadable segment (none of its {ProgramHeaders.Count} program headers is a non-empty PT_LOAD)");
        }
        return (low, high);
    }

    /// <summary>
    /// e_entry as a physical address: when it lies in an executable segment whose virtual and physical addresses differ,
    /// it is translated as QEMU does, since nothing maps the virtual address at entry.
    /// </summary>
    public ulong PhysicalEntry()
    {
        foreach (ElfProgramHeader ph in ProgramHeaders)
        {
            if (ph.Type == ElfProgramHeader.Load && (ph.Flags & ElfProgramHeader.ExecuteFlag) != 0
                && Entry >= ph.VirtualAddress && Entry - ph.VirtualAddress < ph.FileSize)
            {
                return Entry - ph.VirtualAddress + ph.PhysicalAddress;
            }
        }
        return Entry;
    }

    private static void CheckSegment(ElfProgramHeader ph, int fileLength)
    {
        if (ph.Type is not (ElfProgramHeader.Load or ElfProgramHeader.Note))
        {
            return;
        }
        ulong end = ph.Offset + ph.FileSize;
        if (end < ph.Offset || end > (ulong)fileLength)
        {
            throw new InvalidKernelImageException(
                $"kernel image truncated: ELF program header {ph.Index} ends at 0x{end:x} but the file has 0x{fileLength:x} bytes");
        }
        if (ph.Type == ElfProgramHeader.Load)
        {
            if (ph.FileSize > ph.MemorySize)
            {
                throw new InvalidKernelImageException(
                    $"ELF program header {ph.Index} has a file size of 0x{ph.FileSize:x} bytes, larger than its memory size of 0x{ph.MemorySize:x}");
            }
            if (ph.PhysicalAddress + ph.MemorySize < ph.PhysicalAddress)
            {
                throw new InvalidKernelImageException(
                    $"ELF program header {ph.Index} at physical address 0x{ph.PhysicalAddress:x} with 0x{ph.MemorySize:x} bytes wraps around the address space");
            }
        }
    }

    private static ulong Align4(uint n) => ((ulong)n + 3) & ~3UL;

    private static InvalidKernelImageException Truncated(string what, ulong need, int have) =>
        new($"kernel image truncated: {what} needs 0x{need:x} bytes but the file has 0x{have:x} bytes");
}
