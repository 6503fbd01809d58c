using VmmSharp.Devices.Legacy;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Devices;

/// <summary>The hardware-reduced ACPI sleep control and status registers: a sleep request names a state 0-7.</summary>
internal sealed class AcpiSleepControlTarget : IFuzzTarget
{
    public string Name => "acpi-sleep";

    public void Run(ReadOnlySpan<byte> input)
    {
        var device = new AcpiSleepControl(state => FuzzCheckException.Check(state is >= 0 and <= 7, $"sleep state {state} is not a 3-bit SLP_TYP"));
        foreach (PortOp op in PortProgram.Decode(input))
        {
            op.ApplyTo(device);
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("s5.bin", new PortProgram.Builder().Read(1).Read(0).Write(1, 0xff).Write(0, 0x14).Write(0, 0x34).Write(0, 0x3c, 2).ToArray());
    }
}
