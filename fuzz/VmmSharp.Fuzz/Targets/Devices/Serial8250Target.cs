using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Legacy;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Devices;

/// <summary>
/// The 8250 UART's registers, driven as a guest would (<see cref="PortProgram"/>); a write at offset 31 instead hands its
/// bytes to <see cref="Serial8250.EnqueueInput"/>, as the console's input thread does.
/// </summary>
internal sealed class Serial8250Target : IFuzzTarget
{
    private const int HostInputOffset = 31;

    // One console for every run: each ConsoleOutput starts a writer thread, which cost 9 runs in 10 of the time.
    private static readonly ConsoleOutput Output = new(Stream.Null);

    public string Name => "serial8250";

    public void Run(ReadOnlySpan<byte> input)
    {
        using var serial = new Serial8250(Output, new RecordingIrqLine());
        Span<byte> bytes = stackalloc byte[4];
        foreach (PortOp op in PortProgram.Decode(input))
        {
            if (op.IsWrite && op.Offset == HostInputOffset)
            {
                for (int i = 0; i < op.Width; i++)
                {
                    bytes[i] = (byte)(op.Value >> (8 * i));
                }
                int taken = serial.EnqueueInput(bytes[..op.Width]);
                FuzzCheckException.Check(taken >= 0 && taken <= op.Width, $"EnqueueInput took {taken} of {op.Width} bytes");
                continue;
            }
            op.ApplyTo(serial);
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        // Linux's 8250 probe: scratch test, loopback test, FIFO detection, then a baud rate and the interrupt enables.
        yield return ("linux-probe.bin", new PortProgram.Builder()
            .Write(7, 0xa5).Read(7).Write(4, 0x10).Read(6).Write(4, 0x1f).Read(6).Write(4, 0x00)
            .Write(2, 0xc7).Read(2).Write(3, 0x80).Write(0, 0x01).Write(1, 0x00).Write(3, 0x03)
            .Write(4, 0x0b).Write(1, 0x0f).Read(2).Read(5).Write(0, 'h').Write(0, 'i').Read(2).ToArray());
        yield return ("receive.bin", new PortProgram.Builder()
            .Write(4, 0x08).Write(1, 0x01).Write(HostInputOffset, 0x6f6c6c65, 4).Read(2).Read(5).Read(0).Read(0).Read(5).Read(2).ToArray());
        yield return ("loopback-overrun.bin", new PortProgram.Builder()
            .Write(4, 0x18).Write(1, 0x05).Repeat(70, b => b.Write(0, 0x55)).Read(5).Read(2).Read(0, 4).Read(6).ToArray());
        yield return ("wide.bin", new PortProgram.Builder().Write(0, 0x0a0d4948, 4).Write(3, 0x0380, 2).Read(0, 2).Read(6, 4).Read(8).ToArray());
    }
}
