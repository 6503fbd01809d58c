using VmmSharp.State;

namespace VmmSharp.Devices.Legacy;

/// <content>
/// The RTC's state in a snapshot: the 128 bytes of CMOS memory (registers A, B and D, the memory sizes, whatever the
/// guest stored), the index and the NMI mask.
/// </content>
/// <remarks>
/// Time after a restore: the clock registers read the host's clock at the moment of the read and the guest cannot
/// set them, so the guest's RTC offset from host time is always zero and nothing of it is saved: a restored guest
/// reads the current host time, as a real PC's clock runs on while the machine is suspended.
/// </remarks>
public sealed partial class CmosRtc : IStateful
{
    /// <inheritdoc/>
    public ushort StateVersion => 1;

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        lock (_lock)
        {
            writer.WriteRaw(_cmos);
            writer.WriteByte(_index);
            writer.WriteBool(NmiMasked);
        }
    }

    /// <inheritdoc/>
    public void RestoreState(ref StateReader reader, ushort version)
    {
        StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);
        ReadOnlySpan<byte> cmos = reader.ReadRaw(_cmos.Length, "cmos memory");
        byte index = reader.ReadByte("index");
        if (index >= _cmos.Length)
        {
            throw reader.Invalid("index", index, $"is not a CMOS offset below {_cmos.Length}");
        }
        bool nmiMasked = reader.ReadBool("nmi masked");
        lock (_lock)
        {
            cmos.CopyTo(_cmos);
            _cmos[RegisterA] &= unchecked((byte)~AUpdateInProgress);
            _index = index;
            NmiMasked = nmiMasked;
        }
    }
}
