using System.Buffers.Binary;
using System.Text;
using VmmSharp.Devices.Legacy;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Devices;

/// <summary>
/// fw_cfg's selector and data ports, as a byte program of accesses (<see cref="PortProgram"/>), checked against a model of
/// QEMU's legacy interface: a 16-bit write to either port selects an item and rewinds; an 8-bit read from either port
/// returns the item's next byte, then 0 past its end; other widths read all ones and write nothing. The model knows
/// the items below (selector numbers from QEMU's docs/specs/fw_cfg.rst), including the big-endian file directory.
/// </summary>
internal sealed class FwCfgTarget : IFuzzTarget
{
    private const ushort ArchLocal = 0x8000;
    private const ushort EntryMask = 0x3fff;
    private const ushort FileDir = 0x19;
    private const ushort FileFirst = 0x20;

    private static readonly byte[] KernelData = [.. Enumerable.Range(0, 40).Select(i => (byte)i)];
    private static readonly (string Name, byte[] Data)[] Files =
        [("opt/org.vmmsharp/b", [1, 2, 3]), ("etc/e820", new byte[20]), ("opt/org.vmmsharp/a", [])];

    public string Name => "fwcfg";

    public void Run(ReadOnlySpan<byte> input)
    {
        var device = new FwCfg(new FwCfgOptions
        {
            CpuCount = 2,
            RamSize = 64 << 20,
            KernelAddress = 0x10_0000,
            KernelSize = (uint)KernelData.Length,
            KernelData = KernelData,
            CommandLine = "console=ttyS0",
            CommandLineAddress = 0x2_0000,
        });
        foreach ((string name, byte[] data) in Files)
        {
            device.AddFile(name, data);
        }
        Dictionary<ushort, byte[]> model = Model();

        byte[]? selected = model[0]; // the signature is selected at reset
        int position = 0;
        foreach (PortOp op in PortProgram.Decode(input))
        {
            uint read = op.ApplyTo(device);
            bool port = op.Offset < FwCfg.PortCount;
            if (op.IsWrite)
            {
                if (port && op.Width == 2)
                {
                    var key = (ushort)op.Value;
                    selected = (key & ArchLocal) == 0 && model.TryGetValue((ushort)(key & EntryMask), out byte[]? item) ? item : null;
                    position = 0;
                }
                continue;
            }
            if (!port || op.Width != 1)
            {
                uint ones = op.Width == 4 ? uint.MaxValue : (1u << (8 * op.Width)) - 1;
                FuzzCheckException.Check(read == ones, $"fw_cfg {op} read 0x{read:x}, expected all ones");
                continue;
            }
            if (selected is null)
            {
                continue; // an item the model does not know (or none): its bytes are not checked
            }
            byte expected = position < selected.Length ? selected[position++] : (byte)0;
            FuzzCheckException.Check(read == expected, $"fw_cfg read 0x{read:x} at byte {position - 1} of the selected item, expected 0x{expected:x}");
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        // SeaBIOS-style probe: signature, ID, then the file directory and one file by its selector.
        yield return ("probe.bin", new PortProgram.Builder()
            .Write(0, 0x0000, 2).Repeat(5, b => b.Read(1)).Write(0, 0x0001, 2).Repeat(4, b => b.Read(1))
            .Write(0, FileDir, 2).Repeat(4 + 64, b => b.Read(1)).Write(0, FileFirst + 1, 2).Repeat(4, b => b.Read(1)).ToArray());
        yield return ("kernel.bin", new PortProgram.Builder()
            .Write(0, 0x0008, 2).Repeat(4, b => b.Read(1)).Write(1, 0x0011, 2).Repeat(42, b => b.Read(0))
            .Write(0, 0x0015, 2).Repeat(15, b => b.Read(1)).Write(0, 0x4005, 2).Read(1).Read(1).Write(0, 0x8000, 2).Read(1)
            .Read(1, 2).Read(0, 4).Write(1, 0x05, 1).Read(3).ToArray());
    }

    /// <summary>The items whose contents the harness knows independently of the device.</summary>
    private static Dictionary<ushort, byte[]> Model()
    {
        (string Name, byte[] Data)[] sorted = [.. Files.OrderBy(f => f.Name, StringComparer.Ordinal)];
        byte[] directory = new byte[4 + (64 * sorted.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(directory, (uint)sorted.Length);
        var model = new Dictionary<ushort, byte[]>
        {
            [0x00] = "QEMU"u8.ToArray(),
            [0x01] = [1, 0, 0, 0],
            [0x05] = [2, 0],
            [0x08] = BitConverter.GetBytes((uint)KernelData.Length),
            [0x11] = KernelData,
            [0x15] = Encoding.UTF8.GetBytes("console=ttyS0\0"),
            [FileDir] = directory,
        };
        for (int i = 0; i < sorted.Length; i++)
        {
            Span<byte> entry = directory.AsSpan(4 + (64 * i), 64);
            BinaryPrimitives.WriteUInt32BigEndian(entry, (uint)sorted[i].Data.Length);
            BinaryPrimitives.WriteUInt16BigEndian(entry[4..], (ushort)(FileFirst + i));
            Encoding.UTF8.GetBytes(sorted[i].Name, entry[8..]);
            model[(ushort)(FileFirst + i)] = sorted[i].Data;
        }
        return model;
    }
}
