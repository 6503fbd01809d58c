using VmmSharp.Devices.Legacy;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Devices;

/// <summary>QEMU's isa-debug-exit: every write reports (value &lt;&lt; 1) | 1, whatever its width and offset.</summary>
internal sealed class DebugExitTarget : IFuzzTarget
{
    public string Name => "debug-exit";

    public void Run(ReadOnlySpan<byte> input)
    {
        int? status = null;
        var device = new DebugExit(s => status = s);
        foreach (PortOp op in PortProgram.Decode(input))
        {
            status = null;
            uint read = op.ApplyTo(device);
            FuzzCheckException.Check(op.IsWrite ? status == DebugExit.StatusFor(op.Value) : status is null && read == 0,
                $"debug-exit {op} reported {status?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"}, read 0x{read:x}");
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("exits.bin", new PortProgram.Builder().Read(0).Write(0, 0).Write(0, 0x31).Write(0, 0x1234, 2).Write(0, 0xdeadbeef, 4).Write(3, 1).ToArray());
    }
}
