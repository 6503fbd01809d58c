namespace VmmSharp.Buses;

/// <summary>
/// A device on the I/O-port bus. It sees offsets relative to the port it was registered at,
/// so the same model can sit at any base (COM1 or COM2, say).
/// </summary>
/// <remarks>
/// Called from vCPU threads, possibly several at once: an implementation serialises its own state.
/// It must not throw for any offset or value the guest can produce.
/// </remarks>
public interface IPioDevice
{
    /// <summary>Handles a guest <c>in</c> of <c>data.Length</c> bytes (1, 2 or 4) at <paramref name="offset"/>.</summary>
    /// <param name="offset">The port minus the base port the device was registered at.</param>
    /// <param name="data">Receives the value, little-endian.</param>
    void Read(ushort offset, Span<byte> data);

    /// <summary>Handles a guest <c>out</c> of <c>data.Length</c> bytes (1, 2 or 4) at <paramref name="offset"/>.</summary>
    /// <param name="offset">The port minus the base port the device was registered at.</param>
    /// <param name="data">The value written, little-endian.</param>
    void Write(ushort offset, ReadOnlySpan<byte> data);
}
