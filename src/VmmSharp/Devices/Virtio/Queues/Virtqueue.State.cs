using System.Numerics;
using VmmSharp.Memory;
using VmmSharp.State;

namespace VmmSharp.Devices.Virtio.Queues;

/// <content>
/// The queue's state in a snapshot: the driver's registers, whether it was active, the negotiated ring features, the
/// device's ring indices and the first rule the guest broke. The rings themselves are guest memory, saved with it.
/// </content>
public sealed partial class Virtqueue : IStateful
{
    private const int MaxErrorBytes = 1024;

    private bool _restoredActive;

    /// <inheritdoc/>
    public ushort StateVersion => 1;

    /// <summary>
    /// Whether <see cref="RestoreState"/> read an active queue that still waits for <see cref="BindRestored"/> to give
    /// it guest memory.
    /// </summary>
    public bool AwaitsMemory => _restoredActive;

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteUInt16(MaxSize);
        writer.WriteUInt16(Size);
        writer.WriteBool(Ready);
        writer.WriteUInt64(DescriptorTable);
        writer.WriteUInt64(DriverArea);
        writer.WriteUInt64(DeviceArea);
        writer.WriteBool(IsActive || _restoredActive);
        writer.WriteBool(EventIdx);
        writer.WriteBool(IndirectDescriptors);
        writer.WriteUInt16(_nextAvail);
        writer.WriteUInt16(_nextUsed);
        writer.WriteUInt16(_signalledUsed);
        writer.WriteBool(Error is not null);
        if (Error is not null)
        {
            writer.WriteString(Error.Length > MaxErrorBytes / 4 ? Error[..(MaxErrorBytes / 4)] : Error);
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// An active queue comes back inactive until <see cref="BindRestored"/> checks its rings against guest memory,
    /// which the queue does not know here. On an error the queue is reset.
    /// </remarks>
    public void RestoreState(ref StateReader reader, ushort version)
    {
        StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);
        Reset();
        try
        {
            Read(ref reader);
        }
        catch
        {
            Reset();
            throw;
        }
    }

    /// <summary>
    /// Finishes restoring a queue that was active: checks its rings against <paramref name="memory"/> and starts using
    /// them where the saved indices left off. Does nothing for a queue that was not active.
    /// </summary>
    /// <param name="memory">Guest memory, restored already.</param>
    /// <param name="component">What the queue is, for the error message (e.g. "virtio-blk/queue 0").</param>
    /// <exception cref="StateFormatException">A ring lies outside guest memory; the queue is then reset.</exception>
    public void BindRestored(GuestMemory memory, string component)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (!_restoredActive)
        {
            return;
        }
        if (CheckConfiguration(memory) is { } error)
        {
            Reset();
            throw new StateFormatException($"{component}: {error}");
        }
        _restoredActive = false;
        _memory = memory;
    }

    private void Read(ref StateReader reader)
    {
        ushort maxSize = reader.ReadUInt16("max size");
        if (maxSize != MaxSize)
        {
            throw reader.Invalid("max size", maxSize, $"differs from this queue's {MaxSize} (a device of another build?)");
        }
        ushort size = reader.ReadUInt16("size");
        bool ready = reader.ReadBool("ready");
        ulong desc = reader.ReadUInt64("descriptor table");
        ulong driver = reader.ReadUInt64("driver area");
        ulong device = reader.ReadUInt64("device area");
        bool active = reader.ReadBool("active");
        bool eventIdx = reader.ReadBool("event idx");
        bool indirect = reader.ReadBool("indirect descriptors");
        ushort nextAvail = reader.ReadUInt16("next avail");
        ushort nextUsed = reader.ReadUInt16("next used");
        ushort signalledUsed = reader.ReadUInt16("signalled used");
        string? error = reader.ReadBool("error present") ? reader.ReadString(MaxErrorBytes, "error") : null;

        if (active)
        {
            // What TryActivate would have refused cannot have been active; memory is checked in BindRestored.
            if (!ready)
            {
                throw reader.Invalid("ready", false, "but the queue was active");
            }
            if (size == 0 || size > MaxSize || !BitOperations.IsPow2(size))
            {
                throw reader.Invalid("size", size, $"is not a power of two from 1 to {MaxSize}");
            }
            if (desc % 16 != 0)
            {
                throw reader.Invalid("descriptor table", $"0x{desc:x}", "is not 16-byte aligned");
            }
            if (driver % 2 != 0)
            {
                throw reader.Invalid("driver area", $"0x{driver:x}", "is not 2-byte aligned");
            }
            if (device % 4 != 0)
            {
                throw reader.Invalid("device area", $"0x{device:x}", "is not 4-byte aligned");
            }
            // Chains the device took but has not returned: never more than the ring holds.
            ushort inFlight = (ushort)(nextAvail - nextUsed);
            if (inFlight > size)
            {
                throw reader.Invalid("next avail", nextAvail, $"is {inFlight} entries ahead of next used {nextUsed}, more than the queue size {size}");
            }
        }
        else if (eventIdx || indirect || nextAvail != 0 || nextUsed != 0 || signalledUsed != 0 || error is not null)
        {
            throw new StateFormatException($"{reader.Component}: an inactive queue has ring state (indices {nextAvail}/{nextUsed}, features or an error)");
        }

        Size = size;
        Ready = ready;
        DescriptorTable = desc;
        DriverArea = driver;
        DeviceArea = device;
        EventIdx = eventIdx;
        IndirectDescriptors = indirect;
        _nextAvail = nextAvail;
        _nextUsed = nextUsed;
        _signalledUsed = signalledUsed;
        Error = error;
        _restoredActive = active;
    }
}
