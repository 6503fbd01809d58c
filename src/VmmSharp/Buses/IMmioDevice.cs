namespace VmmSharp.Buses;

/// <summary>
/// A device on the MMIO bus. It sees offsets relative to the guest-physical address it was registered at.
/// </summary>
/// <remarks>
/// Called from vCPU threads, possibly several at once: an implementation serialises its own state.
/// It must not throw for any offset or value the guest can produce.
/// </remarks>
public interface IMmioDevice
{
    /// <summary>Handles a guest load of <c>data.Length</c> bytes at <paramref name="offset"/>.</summary>
    /// <param name="offset">The address minus the base address the device was registered at.</param>
    /// <param name="data">Receives the value, little-endian.</param>
    void Read(ulong offset, Span<byte> data);

    /// <summary>Handles a guest store of <c>data.Length</c> bytes at <paramref name="offset"/>.</summary>
    /// <param name="offset">The address minus the base address the device was registered at.</param>
    /// <param name="data">The value written, little-endian.</param>
    void Write(ulong offset, ReadOnlySpan<byte> data);
}
