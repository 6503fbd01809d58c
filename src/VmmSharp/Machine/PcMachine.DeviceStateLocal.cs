using VmmSharp.State;

namespace VmmSharp.Machine;

// Placeholder until devstate's PcMachine.DeviceState.cs (IStateful on every device, device threads quiesced) is
// merged: it replaces this file. The names are the ones agreed with devstate.
public sealed partial class PcMachine
{
    /// <summary>Writes every device's state (placeholder: none yet).</summary>
    internal void SaveDevices(StateWriter writer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        writer.WriteInt32(0);
    }

    /// <summary>Reads back what <see cref="SaveDevices"/> wrote.</summary>
    internal void RestoreDevices(ref StateReader reader)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int count = reader.ReadInt32("device count");
        if (count != 0)
        {
            throw reader.Invalid("device count", count, "is not 0 (this build saves no device state)");
        }
    }

    /// <summary>Quiesces the device threads for a pause (placeholder: nothing yet).</summary>
    internal void PauseDevices() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Wakes the device threads after a pause.</summary>
    internal void ResumeDevices() => ObjectDisposedException.ThrowIf(_disposed, this);
}
