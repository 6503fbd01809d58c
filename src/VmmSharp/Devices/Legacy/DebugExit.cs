using System.Buffers.Binary;
using VmmSharp.Buses;

namespace VmmSharp.Devices.Legacy;

/// <summary>
/// QEMU's <c>isa-debug-exit</c>: a guest write of value v ends the VM with exit status (v &lt;&lt; 1) | 1, so test
/// guests can report success or failure. QEMU users give it <c>iobase=0xf4,iosize=0x04</c>; register it the same way.
/// </summary>
/// <remarks>
/// As in QEMU, the value is the little-endian number of the bytes written, whatever the width (1, 2 or 4), at any
/// offset in the range; reads return 0, which is how a guest tells the device is there.
/// </remarks>
public sealed class DebugExit : IPioDevice
{
    /// <summary>The port test guests conventionally use.</summary>
    public const ushort DefaultPort = 0xf4;

    /// <summary>The width of the conventional range (QEMU's <c>iosize=0x04</c>).</summary>
    public const ushort DefaultPortCount = 4;

    private readonly Action<int> _exit;

    /// <summary>Creates the device.</summary>
    /// <param name="exit">Called with the exit status on each write; it typically stops the VM.</param>
    public DebugExit(Action<int> exit)
    {
        ArgumentNullException.ThrowIfNull(exit);
        _exit = exit;
    }

    /// <summary>The exit status QEMU reports for a guest write of <paramref name="value"/>.</summary>
    /// <param name="value">The value written.</param>
    /// <returns>(value &lt;&lt; 1) | 1, truncated to an int as C's <c>exit</c> takes it.</returns>
    public static int StatusFor(uint value) => unchecked((int)((value << 1) | 1));

    /// <inheritdoc/>
    public void Read(ushort offset, Span<byte> data) => data.Clear();

    /// <inheritdoc/>
    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        Span<byte> value = stackalloc byte[4];
        value.Clear();
        data[..Math.Min(data.Length, 4)].CopyTo(value);
        _exit(StatusFor(BinaryPrimitives.ReadUInt32LittleEndian(value)));
    }
}
