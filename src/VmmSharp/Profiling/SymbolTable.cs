using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace VmmSharp.Profiling;

/// <summary>One code symbol: its name and start address.</summary>
/// <param name="Name">The symbol's name.</param>
/// <param name="Address">Its start.</param>
public readonly record struct Symbol(string Name, ulong Address);

/// <summary>
/// A guest kernel's code symbols, to name the RIPs of a profile: from an ELF file's <c>.symtab</c> (an unstripped
/// <c>vmlinux</c>) or from a <c>System.map</c> (<c>nm</c> output: <c>ADDRESS TYPE NAME</c>, text symbols only).
/// </summary>
public sealed class SymbolTable
{
    // A RIP further than this past the last symbol before it is not taken as inside that symbol.
    private const ulong MaxDistance = 1UL << 20;

    private readonly ulong[] _addresses;
    private readonly string[] _names;

    private SymbolTable(List<Symbol> symbols)
    {
        symbols.Sort((a, b) => a.Address.CompareTo(b.Address));
        _addresses = [.. symbols.Select(s => s.Address)];
        _names = [.. symbols.Select(s => s.Name)];
    }

    /// <summary>A table without symbols: every address is unknown.</summary>
    public static SymbolTable Empty { get; } = new([]);

    /// <summary>How many symbols the table has.</summary>
    public int Count => _addresses.Length;

    /// <summary>The symbol an address falls into (the last one at or before it, within 1 MiB), or null.</summary>
    public Symbol? Find(ulong address)
    {
        int i = Array.BinarySearch(_addresses, address);
        if (i < 0)
        {
            i = ~i - 1;
        }
        else
        {
            while (i + 1 < _addresses.Length && _addresses[i + 1] == address)
            {
                i++; // aliases at one address: the last one sorted, consistently
            }
        }
        return i >= 0 && address - _addresses[i] < MaxDistance ? new Symbol(_names[i], _addresses[i]) : null;
    }

    /// <summary>Reads a file: an ELF (its <c>.symtab</c>; empty when stripped) or a System.map.</summary>
    /// <exception cref="InvalidDataException">The file is neither, or is cut short; the message names it.</exception>
    public static SymbolTable Load(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        try
        {
            return data.AsSpan().StartsWith("\u007fELF"u8) ? FromElf(data) : FromSystemMap(Encoding.ASCII.GetString(data));
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"symbol file '{path}': {e.Message}", e);
        }
    }

    /// <summary>The function and untyped symbols of executable sections in a 64-bit little-endian ELF's <c>.symtab</c>.</summary>
    /// <exception cref="InvalidDataException">Not such an ELF, or a header points outside the file.</exception>
    public static SymbolTable FromElf(ReadOnlySpan<byte> elf)
    {
        if (elf.Length < 64 || !elf.StartsWith("\u007fELF"u8) || elf[4] != 2 || elf[5] != 1)
        {
            throw new InvalidDataException("not a 64-bit little-endian ELF file");
        }
        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(elf[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3a..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3c..]);
        if (shnum == 0)
        {
            return Empty;
        }
        if (shentsize < 64)
        {
            throw new InvalidDataException($"section header size {shentsize} is below 64");
        }
        ReadOnlySpan<byte> Section(ReadOnlySpan<byte> file, int index) => Slice(file, shoff + (ulong)index * (ulong)shentsize, 64);

        var symbols = new List<Symbol>();
        for (int i = 0; i < shnum; i++)
        {
            ReadOnlySpan<byte> sh = Section(elf, i);
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != 2) // SHT_SYMTAB
            {
                continue;
            }
            ReadOnlySpan<byte> table = Slice(elf, BinaryPrimitives.ReadUInt64LittleEndian(sh[24..]), BinaryPrimitives.ReadUInt64LittleEndian(sh[32..]));
            int link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[40..]);
            if (link >= shnum)
            {
                throw new InvalidDataException($"the symbol table's string table is section {link} of {shnum}");
            }
            ReadOnlySpan<byte> strsh = Section(elf, link);
            ReadOnlySpan<byte> strings = Slice(elf, BinaryPrimitives.ReadUInt64LittleEndian(strsh[24..]), BinaryPrimitives.ReadUInt64LittleEndian(strsh[32..]));
            for (int off = 24; off + 24 <= table.Length; off += 24) // entry 0 is the null symbol
            {
                ReadOnlySpan<byte> sym = table.Slice(off, 24);
                int type = sym[4] & 0xf; // STT_NOTYPE 0, STT_FUNC 2
                int shndx = BinaryPrimitives.ReadUInt16LittleEndian(sym[6..]);
                ulong value = BinaryPrimitives.ReadUInt64LittleEndian(sym[8..]);
                if (type is not (0 or 2) || shndx == 0 || shndx >= shnum || value == 0)
                {
                    continue;
                }
                ulong flags = BinaryPrimitives.ReadUInt64LittleEndian(Section(elf, shndx)[8..]);
                if ((flags & 0x4) == 0) // SHF_EXECINSTR
                {
                    continue;
                }
                uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(sym);
                if (nameOffset >= strings.Length)
                {
                    continue;
                }
                ReadOnlySpan<byte> name = strings[(int)nameOffset..];
                int end = name.IndexOf((byte)0);
                if (end > 0)
                {
                    symbols.Add(new Symbol(Encoding.UTF8.GetString(name[..end]), value));
                }
            }
        }
        return new SymbolTable(symbols);
    }

    /// <summary>The text symbols (types T, t, W, w) of <c>nm</c> output or a System.map; other lines are skipped.</summary>
    public static SymbolTable FromSystemMap(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var symbols = new List<Symbol>();
        foreach (string line in text.Split('\n'))
        {
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 3 && f[1] is "T" or "t" or "W" or "w"
                && ulong.TryParse(f[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong address))
            {
                symbols.Add(new Symbol(f[2], address));
            }
        }
        if (symbols.Count == 0 && text.Length > 0)
        {
            throw new InvalidDataException("no text symbols (lines 'ADDRESS T NAME') found: not an ELF file or a System.map");
        }
        return new SymbolTable(symbols);
    }

    private static ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> file, ulong offset, ulong length)
    {
        if (offset > (ulong)file.Length || length > (ulong)file.Length - offset)
        {
            throw new InvalidDataException($"{length} bytes at offset 0x{offset:x} lie outside the file of {file.Length} bytes");
        }
        return file.Slice((int)offset, (int)length);
    }
}
