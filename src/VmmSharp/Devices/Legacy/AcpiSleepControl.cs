using VmmSharp.Buses;
using VmmSharp.State;

namespace VmmSharp.Devices.Legacy;

/// <summary>
/// The sleep control and status registers of hardware-reduced ACPI (two one-byte ports). A write with SLP_EN
/// (bit 5) set asks for the sleep state in SLP_TYP (bits 2–4); the machine decides what a state means
/// (5, soft-off, is power-off). Status reads 0: the guest never wakes from anything.
/// </summary>
/// <remarks>The registers keep nothing (a write is an action, status is always 0), so the saved state is empty; it is a
/// section of its own so that a later version with state (wake status, say) reads snapshots of this one.</remarks>
public sealed class AcpiSleepControl : IPioDevice, IStateful
{
    /// <summary>The number of ports: control, then status.</summary>
    public const ushort PortCount = 2;

    private const byte SleepEnable = 0x20;

    private readonly Action<int> _sleep;

    /// <summary>Creates the registers; <paramref name="sleep"/> gets the requested SLP_TYP.</summary>
    public AcpiSleepControl(Action<int> sleep)
    {
        ArgumentNullException.ThrowIfNull(sleep);
        _sleep = sleep;
    }

    /// <inheritdoc/>
    public ushort StateVersion => 1;

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
    }

    /// <inheritdoc/>
    public void RestoreState(ref StateReader reader, ushort version)
        => StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);

    /// <inheritdoc/>
    public void Read(ushort offset, Span<byte> data) => data.Clear();

    /// <inheritdoc/>
    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        if (offset == 0 && !data.IsEmpty && (data[0] & SleepEnable) != 0)
        {
            _sleep((data[0] >> 2) & 7);
        }
    }
}
