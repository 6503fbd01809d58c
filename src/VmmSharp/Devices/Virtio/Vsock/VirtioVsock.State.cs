using VmmSharp.State;

namespace VmmSharp.Devices.Virtio.Vsock;

/// <content>
/// The device's own state in a snapshot: the guest's cid, so that a snapshot is not restored behind another one.
/// Connections are host sockets and are not saved (a restored device starts with none and sends the guest a
/// transport reset, <see cref="OnRestored"/>).
/// </content>
public sealed partial class VirtioVsock
{
    /// <inheritdoc/>
    protected override void SaveDeviceState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteUInt64(GuestCid);
    }

    /// <inheritdoc/>
    protected override void RestoreDeviceState(ref StateReader reader, ushort version)
    {
        ulong cid = reader.ReadUInt64("guest cid");
        if (cid != GuestCid)
        {
            throw reader.Invalid("guest cid", cid, $"differs from this device's {GuestCid}");
        }
    }
}
