using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using VmmSharp.State;

namespace VmmSharp.Snapshot;

/// <summary>
/// A snapshot's state file: a header (magic, format version, total length, the VmmSharp version that wrote it), named
/// and versioned sections, and a CRC64 over everything before it. The layout is in <c>docs/SNAPSHOT.md</c>.
/// </summary>
/// <remarks>
/// Reading checks, in this order, that the file is long enough, the magic, the format version, the length the header
/// gives against the file's, the checksum, and then every section's bounds: a bad file raises one
/// <see cref="SnapshotFormatException"/> that names it and the value that is wrong, and nothing is allocated from a
/// length the file gives beyond <see cref="MaxLength"/>. Threading: immutable once read or built; any thread.
/// </remarks>
public sealed class SnapshotFile
{
    /// <summary>The format version this build writes and reads.</summary>
    public const ushort FormatVersion = 1;

    /// <summary>The longest state file read: 64 MiB (guest memory is in the memory file, not here).</summary>
    public const int MaxLength = 64 << 20;

    /// <summary>The most sections a state file may hold.</summary>
    public const int MaxSections = 256;

    private const int HeaderLength = 8 + 2 + 2 + 8; // magic, format version, reserved, total length
    private const int ChecksumLength = 8;
    private const int MaxName = 64;

    /// <summary>The file's first eight bytes.</summary>
    public static ReadOnlySpan<byte> Magic => "VMMSNAP\0"u8;

    private readonly List<Section> _sections = [];

    /// <summary>Creates an empty state file to add sections to.</summary>
    public SnapshotFile(string writerVersion)
    {
        ArgumentNullException.ThrowIfNull(writerVersion);
        WriterVersion = writerVersion;
    }

    /// <summary>The VmmSharp version that wrote the file.</summary>
    public string WriterVersion { get; }

    /// <summary>The sections, in file order.</summary>
    public IReadOnlyList<Section> Sections => _sections;

    /// <summary>Adds a section named <paramref name="name"/> holding <paramref name="component"/>'s state at its version.</summary>
    public void Add(string name, IStateful component)
    {
        ArgumentNullException.ThrowIfNull(component);
        var writer = new StateWriter();
        component.SaveState(writer);
        Add(name, component.StateVersion, writer.WrittenSpan.ToArray());
    }

    /// <summary>Adds a section of raw bytes.</summary>
    /// <exception cref="ArgumentException">The name is empty, longer than 64 bytes, or taken.</exception>
    public void Add(string name, ushort version, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(data);
        if (name.Length == 0 || Encoding.UTF8.GetByteCount(name) > MaxName || _sections.Any(s => s.Name == name))
        {
            throw new ArgumentException($"section name '{name}' is empty, longer than {MaxName} bytes or taken", nameof(name));
        }
        _sections.Add(new Section(name, version, data));
    }

    /// <summary>The section named <paramref name="name"/>.</summary>
    /// <exception cref="SnapshotFormatException">There is none.</exception>
    public Section Get(string name)
        => _sections.FirstOrDefault(s => s.Name == name) ?? throw new SnapshotFormatException($"snapshot has no '{name}' section");

    /// <summary>Reads section <paramref name="name"/> into <paramref name="component"/>, which must read all of it.</summary>
    public void Restore(string name, IStateful component)
    {
        ArgumentNullException.ThrowIfNull(component);
        Section section = Get(name);
        var reader = new StateReader(section.Data, name);
        component.RestoreState(ref reader, section.Version);
        reader.EnsureEnd();
    }

    /// <summary>The whole file as bytes, checksum included.</summary>
    public byte[] ToBytes()
    {
        var w = new StateWriter(4096);
        w.WriteRaw(Magic);
        w.WriteUInt16(FormatVersion);
        w.WriteUInt16(0);
        w.WriteUInt64(0); // total length, patched below
        w.WriteString(WriterVersion);
        w.WriteInt32(_sections.Count);
        foreach (Section s in _sections)
        {
            w.WriteString(s.Name);
            w.WriteUInt16(s.Version);
            w.WriteBytes(s.Data);
        }
        byte[] bytes = new byte[w.Length + ChecksumLength];
        w.WrittenSpan.CopyTo(bytes);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(12), (ulong)bytes.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(bytes.Length - ChecksumLength), Crc64.HashToUInt64(bytes.AsSpan(0, bytes.Length - ChecksumLength)));
        return bytes;
    }

    /// <summary>Writes the file to <paramref name="path"/> (replacing it), flushed to disk.</summary>
    public void Write(string path)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        file.Write(ToBytes());
        file.Flush(flushToDisk: true);
    }

    /// <summary>Reads and checks the state file at <paramref name="path"/>.</summary>
    /// <exception cref="SnapshotFormatException">The file is missing, unreadable, or not a good snapshot; the message says which value is wrong.</exception>
    public static SnapshotFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (file.Length > MaxLength)
            {
                throw new SnapshotFormatException($"snapshot '{path}' is {file.Length} bytes; a state file has at most {MaxLength}");
            }
            bytes = new byte[file.Length];
            file.ReadExactly(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SnapshotFormatException($"snapshot '{path}' cannot be read: {e.Message}", e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses and checks a state file's bytes; <paramref name="name"/> names it in errors.</summary>
    /// <exception cref="SnapshotFormatException">The bytes are not a good snapshot.</exception>
    public static SnapshotFile Parse(ReadOnlySpan<byte> bytes, string name = "snapshot")
    {
        if (bytes.Length < HeaderLength + ChecksumLength)
        {
            throw new SnapshotFormatException($"{name} is truncated: {bytes.Length} bytes, less than a header and checksum");
        }
        if (!bytes[..8].SequenceEqual(Magic))
        {
            throw new SnapshotFormatException($"{name} is not a VmmSharp snapshot (magic {Convert.ToHexString(bytes[..8])})");
        }
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]);
        if (version != FormatVersion)
        {
            throw new SnapshotFormatException($"{name} has snapshot format version {version}; this build reads version {FormatVersion}");
        }
        ushort reserved = BinaryPrimitives.ReadUInt16LittleEndian(bytes[10..]);
        if (reserved != 0)
        {
            // Written as 0; a later format may give it a meaning, which this build would not know.
            throw new SnapshotFormatException($"{name} has 0x{reserved:x4} in its reserved header field, where this build writes 0");
        }
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes[12..]);
        if (length != (ulong)bytes.Length)
        {
            throw new SnapshotFormatException(length > (ulong)bytes.Length
                ? $"{name} is truncated: {bytes.Length} of its {length} bytes"
                : $"{name} is {bytes.Length} bytes, but its header says {length}");
        }
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(bytes[^ChecksumLength..]);
        ulong actual = Crc64.HashToUInt64(bytes[..^ChecksumLength]);
        if (stored != actual)
        {
            throw new SnapshotFormatException($"{name} is corrupt: CRC64 0x{actual:x16}, but the file says 0x{stored:x16}");
        }
        try
        {
            var reader = new StateReader(bytes[HeaderLength..^ChecksumLength], name);
            var file = new SnapshotFile(reader.ReadString(MaxName, "VmmSharp version"));
            int count = reader.ReadInt32("section count");
            if (count < 0 || count > MaxSections)
            {
                throw reader.Invalid("section count", count, $"is not 0 to {MaxSections}");
            }
            for (int i = 0; i < count; i++)
            {
                string sectionName = reader.ReadString(MaxName, $"section {i} name");
                ushort sectionVersion = reader.ReadUInt16($"section '{sectionName}' version");
                byte[] data = reader.ReadBytes(MaxLength, $"section '{sectionName}'").ToArray();
                if (sectionName.Length == 0 || file._sections.Any(s => s.Name == sectionName))
                {
                    throw reader.Invalid($"section {i} name", $"'{sectionName}'", "is empty or repeated");
                }
                file._sections.Add(new Section(sectionName, sectionVersion, data));
            }
            reader.EnsureEnd();
            return file;
        }
        catch (StateFormatException e)
        {
            throw new SnapshotFormatException(e.Message, e);
        }
    }

    /// <summary>One named, versioned section of state.</summary>
    /// <param name="Name">The section's name.</param>
    /// <param name="Version">The layout version its writer gave.</param>
    /// <param name="Data">Its bytes.</param>
    public sealed record Section(string Name, ushort Version, byte[] Data);
}
