using VmmSharp.Buses;
using VmmSharp.Devices.Legacy;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Devices;

/// <summary>
/// The i8042 keyboard controller's data and command ports: offset bit 0 picks the port (0 data, 1 command), the other
/// bits are the offset within it. A reset request is counted and the controller keeps being driven, as after a reboot.
/// </summary>
internal sealed class I8042Target : IFuzzTarget
{
    public string Name => "i8042";

    public void Run(ReadOnlySpan<byte> input)
    {
        int resets = 0;
        var controller = new I8042(() => resets++, new RecordingIrqLine(), new RecordingIrqLine());
        foreach (PortOp op in PortProgram.Decode(input))
        {
            IPioDevice port = (op.Offset & 1) == 0 ? controller.DataPort : controller.CommandPort;
            (op with { Offset = (ushort)(op.Offset >> 1) }).ApplyTo(port);
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        const int Data = 0, Command = 1;
        // Linux's i8042 probe: flush, read and write the command byte, self-test, interface tests, aux probe.
        yield return ("linux-probe.bin", new PortProgram.Builder()
            .Read(Command).Read(Data).Write(Command, 0x20).Read(Command).Read(Data).Write(Command, 0x60).Write(Data, 0x47)
            .Write(Command, 0xaa).Read(Data).Write(Command, 0xab).Read(Data).Write(Command, 0xa8).Write(Command, 0xd3).Write(Data, 0x5a)
            .Read(Command).Read(Data).Write(Command, 0xd4).Write(Data, 0xf2).Read(Data).Write(Command, 0xa7).ToArray());
        yield return ("keyboard.bin", new PortProgram.Builder()
            .Write(Data, 0xff).Read(Data).Read(Data).Write(Data, 0xf2).Read(Data).Read(Data).Read(Data)
            .Write(Data, 0xed).Write(Data, 0x07).Read(Data).Write(Data, 0xee).Read(Data).Repeat(20, b => b.Write(Data, 0xf4)).ToArray());
        yield return ("reset.bin", new PortProgram.Builder()
            .Write(Command, 0xd1).Write(Data, 0xfe).Write(Command, 0xd0).Read(Data).Write(Command, 0xfe).Read(Command).ToArray());
    }
}
