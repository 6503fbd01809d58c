using VmmSharp.State;

namespace VmmSharp.Devices.Legacy;

/// <content>
/// fw_cfg's state in a snapshot: the selected item and how far the guest has read it. The items themselves (the
/// signature, RAM size, command line, kernel, files) are configuration, not state: the machine rebuilds them from its
/// options on restore, and the saved offset is checked against the rebuilt item.
/// </content>
public sealed partial class FwCfg : IStateful
{
    private ushort _selector = FwCfgKeys.Signature;

    /// <inheritdoc/>
    public ushort StateVersion => 1;

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        lock (_lock)
        {
            writer.WriteUInt16(_selector);
            writer.WriteInt32(_offset);
        }
    }

    /// <inheritdoc/>
    public void RestoreState(ref StateReader reader, ushort version)
    {
        StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);
        ushort selector = reader.ReadUInt16("selector");
        int offset = reader.ReadInt32("offset");
        lock (_lock)
        {
            Select(selector);
            if (offset < 0 || offset > _current.Length)
            {
                Select(FwCfgKeys.Signature);
                throw reader.Invalid("offset", offset, $"is outside item 0x{selector:x4} of {_current.Length} byte(s)");
            }
            _offset = offset;
        }
    }
}
