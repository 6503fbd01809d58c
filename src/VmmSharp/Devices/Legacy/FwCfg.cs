using System.Buffers.Binary;
using System.Text;
using VmmSharp.Buses;

namespace VmmSharp.Devices.Legacy;

/// <summary>
/// QEMU's firmware configuration interface (fw_cfg) on its legacy I/O ports: a 16-bit write to the selector
/// (0x510) picks an item, and 8-bit reads from the data port (0x511) walk it, reading 0 past its end. Register it at
/// <see cref="DefaultPort"/> for <see cref="PortCount"/> ports.
/// </summary>
/// <remarks>
/// <para>Items are little-endian, except the file directory, which is big-endian, as in QEMU. DMA is not
/// offered (the ID item says so), and data writes are ignored, as in current QEMU.</para>
/// <para>As QEMU's combined I/O region does, a 16-bit write to either port selects and an 8-bit read from either
/// port reads data; other widths read all ones and write nothing.</para>
/// </remarks>
public sealed partial class FwCfg : IPioDevice
{
    /// <summary>The selector port; the data port follows it.</summary>
    public const ushort DefaultPort = 0x510;

    /// <summary>The number of ports (selector and data).</summary>
    public const ushort PortCount = 2;

    /// <summary>The longest file name, in UTF-8 bytes, leaving room for the NUL in the 56-byte field.</summary>
    public const int MaxFileNameLength = 55;

    private const int FileEntrySize = 64;
    private const int FileNameFieldSize = 56;
    private const int MaxFiles = FwCfgKeys.EntryMask + 1 - FwCfgKeys.FileFirst;

    private readonly Lock _lock = new();
    private readonly Dictionary<ushort, byte[]> _items = [];
    private readonly SortedList<string, byte[]> _files = new(StringComparer.Ordinal);
    private byte[] _current = [];
    private int _offset;

    /// <summary>Creates the device with the items <paramref name="options"/> describes and an empty file directory.</summary>
    /// <param name="options">The machine and kernel description.</param>
    /// <exception cref="ArgumentException">The command line contains a NUL, or the UUID is not 16 bytes.</exception>
    public FwCfg(FwCfgOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _items[FwCfgKeys.Signature] = "QEMU"u8.ToArray();
        _items[FwCfgKeys.Id] = U32(1); // traditional interface only; bit 1 would promise DMA
        if (options.Uuid is not null && options.Uuid.Count != 16)
        {
            throw new ArgumentException($"fw_cfg UUID must be 16 bytes; it is {options.Uuid.Count}", nameof(options));
        }
        _items[FwCfgKeys.Uuid] = options.Uuid?.ToArray() ?? new byte[16];
        _items[FwCfgKeys.RamSize] = U64(options.RamSize);
        _items[FwCfgKeys.NoGraphic] = U16(options.NoGraphic ? (ushort)1 : (ushort)0);
        _items[FwCfgKeys.NbCpus] = U16(options.CpuCount);
        _items[FwCfgKeys.MaxCpus] = U16(options.MaxCpus ?? options.CpuCount);
        _items[FwCfgKeys.BootMenu] = U16(0);

        if (options.KernelSize != 0 || options.KernelData is not null)
        {
            _items[FwCfgKeys.KernelAddress] = U32(options.KernelAddress);
            _items[FwCfgKeys.KernelSize] = U32(options.KernelSize);
            _items[FwCfgKeys.KernelData] = options.KernelData?.ToArray() ?? [];
        }
        if (options.InitrdSize != 0 || options.InitrdData is not null)
        {
            _items[FwCfgKeys.InitrdAddress] = U32(options.InitrdAddress);
            _items[FwCfgKeys.InitrdSize] = U32(options.InitrdSize);
            _items[FwCfgKeys.InitrdData] = options.InitrdData?.ToArray() ?? [];
        }
        if (options.SetupData is not null)
        {
            _items[FwCfgKeys.SetupAddress] = U32(options.SetupAddress);
            _items[FwCfgKeys.SetupSize] = U32((uint)options.SetupData.Count);
            _items[FwCfgKeys.SetupData] = options.SetupData.ToArray();
        }
        if (options.CommandLine is not null)
        {
            if (options.CommandLine.Contains('\0', StringComparison.Ordinal))
            {
                throw new ArgumentException($"kernel command line \"{options.CommandLine}\" contains a NUL", nameof(options));
            }
            byte[] cmdline = Encoding.UTF8.GetBytes(options.CommandLine + "\0");
            _items[FwCfgKeys.CommandLineAddress] = U32(options.CommandLineAddress);
            _items[FwCfgKeys.KernelCommandLine] = U32(options.CommandLineAddress);
            _items[FwCfgKeys.CommandLineSize] = U32((uint)cmdline.Length);
            _items[FwCfgKeys.CommandLineData] = cmdline;
        }
        RebuildFiles();
        Select(FwCfgKeys.Signature);
    }

    /// <summary>
    /// Publishes a named file (<c>etc/e820</c>, <c>opt/org.example/config</c>, …) in the file directory. Files get
    /// selectors from <see cref="FwCfgKeys.FileFirst"/> in name order, as QEMU assigns them, so add them all before the guest starts.
    /// </summary>
    /// <param name="name">The file's name: 1 to <see cref="MaxFileNameLength"/> UTF-8 bytes, no NUL, not yet used.</param>
    /// <param name="data">The file's contents; copied.</param>
    /// <exception cref="ArgumentException">The name is empty, too long, contains a NUL or is taken, or the directory is full.</exception>
    public void AddFile(string name, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(data);
        int length = Encoding.UTF8.GetByteCount(name);
        if (length == 0 || length > MaxFileNameLength || name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"fw_cfg file name \"{name}\" must be 1 to {MaxFileNameLength} UTF-8 bytes without NUL; it is {length}", nameof(name));
        }
        lock (_lock)
        {
            if (_files.ContainsKey(name))
            {
                throw new ArgumentException($"fw_cfg file \"{name}\" already exists", nameof(name));
            }
            if (_files.Count == MaxFiles)
            {
                throw new ArgumentException($"fw_cfg file \"{name}\" does not fit: the directory holds {MaxFiles} files", nameof(name));
            }
            _files.Add(name, (byte[])data.Clone());
            RebuildFiles();
        }
    }

    /// <inheritdoc/>
    public void Read(ushort offset, Span<byte> data)
    {
        if (data.Length != 1 || offset >= PortCount)
        {
            data.Fill(0xff);
            return;
        }
        lock (_lock)
        {
            data[0] = _offset < _current.Length ? _current[_offset] : (byte)0;
            if (_offset < _current.Length)
            {
                _offset++;
            }
        }
    }

    /// <inheritdoc/>
    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        if (data.Length != 2 || offset >= PortCount)
        {
            return;
        }
        lock (_lock)
        {
            Select(BinaryPrimitives.ReadUInt16LittleEndian(data));
        }
    }

    private void Select(ushort key)
    {
        _selector = key;
        _offset = 0;
        // Arch-local items (0x8000 and up) are none here; the write-channel bit does not change the item.
        _current = (key & FwCfgKeys.ArchLocal) == 0 && _items.TryGetValue((ushort)(key & FwCfgKeys.EntryMask), out byte[]? item) ? item : [];
    }

    /// <summary>Re-numbers the files in name order and rewrites the directory.</summary>
    private void RebuildFiles()
    {
        byte[] directory = new byte[4 + (FileEntrySize * _files.Count)];
        BinaryPrimitives.WriteUInt32BigEndian(directory, (uint)_files.Count);
        for (int i = 0; i < _files.Count; i++)
        {
            var key = (ushort)(FwCfgKeys.FileFirst + i);
            byte[] contents = _files.Values[i];
            _items[key] = contents;
            Span<byte> entry = directory.AsSpan(4 + (i * FileEntrySize), FileEntrySize);
            BinaryPrimitives.WriteUInt32BigEndian(entry, (uint)contents.Length);
            BinaryPrimitives.WriteUInt16BigEndian(entry[4..], key);
            Encoding.UTF8.GetBytes(_files.Keys[i], entry.Slice(8, FileNameFieldSize));
        }
        _items[FwCfgKeys.FileDir] = directory;
    }

    private static byte[] U16(ushort value)
    {
        byte[] bytes = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        return bytes;
    }

    private static byte[] U32(uint value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        return bytes;
    }

    private static byte[] U64(ulong value)
    {
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return bytes;
    }
}
