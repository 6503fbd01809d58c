using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Memory;
using VmmSharp.State;

namespace VmmSharp.Devices.Virtio;

/// <content>
/// The device's state in a snapshot (what every virtio device has: activation, negotiated features, NEEDS_RESET, its
/// queues; then the device's own, <see cref="SaveDeviceState"/>), and pausing its work (<see cref="IQuiescable"/>).
/// </content>
public abstract partial class VirtioDevice : IStateful, IQuiescable
{
    private const ushort CommonStateVersion = 1;
    private const int MaxFailureBytes = 1024;

    private bool _restoredActive;
    private volatile bool _paused;
    private bool _notifiedWhilePaused;

    /// <summary>The version of the layout <see cref="SaveDeviceState"/> writes; a device raises it when that changes.</summary>
    public virtual ushort StateVersion => 1;

    /// <summary>Whether the device is paused (<see cref="Pause"/>): it takes no queue work and no host input.</summary>
    public bool IsPaused => _paused;

    /// <inheritdoc/>
    public void Pause()
    {
        lock (Sync)
        {
            // Queue work and host input run under Sync, so once it is held nothing is half done: every chain the
            // device took has been returned to the used ring.
            _paused = true;
        }
        OnPause();
    }

    /// <inheritdoc/>
    public void Resume()
    {
        lock (Sync)
        {
            _paused = false;
            if (_notifiedWhilePaused)
            {
                // The notifications that came while paused, served now (the queue number was not kept: all look).
                _notifiedWhilePaused = false;
                for (int q = 0; q < _queues.Length; q++)
                {
                    Notify(q);
                }
            }
        }
        OnResume();
    }

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        lock (Sync)
        {
            writer.WriteUInt16(CommonStateVersion);
            writer.WriteUInt32((uint)DeviceType);
            writer.WriteUInt64(DeviceFeatures);
            writer.WriteBool(IsActive || _restoredActive);
            writer.WriteUInt64(DriverFeatures);
            writer.WriteBool(_needsReset);
            writer.WriteBool(Failure is not null);
            if (Failure is not null)
            {
                writer.WriteString(Failure.Length > MaxFailureBytes / 4 ? Failure[..(MaxFailureBytes / 4)] : Failure);
            }
            writer.WriteUInt16((ushort)_queues.Length);
            foreach (Virtqueue q in _queues)
            {
                writer.WriteSection(q);
            }
            SaveDeviceState(writer);
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The device comes back reset if the state is refused. An active device waits for <see cref="BindRestored"/>
    /// (the transport calls it) to check its queues against guest memory and get its interrupt.
    /// </remarks>
    public void RestoreState(ref StateReader reader, ushort version)
    {
        StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);
        Reset();
        lock (Sync)
        {
            try
            {
                ReadCommonState(ref reader);
                RestoreDeviceState(ref reader, version);
            }
            catch
            {
                Reset();
                throw;
            }
        }
    }

    /// <summary>
    /// Finishes a restore: the device gets its interrupt and, if it was active, its queues are checked against
    /// <paramref name="memory"/> and it carries on where the snapshot left it.
    /// </summary>
    /// <param name="memory">Guest memory, restored already.</param>
    /// <param name="interrupt">The transport's interrupt.</param>
    /// <param name="component">What the device is, for error messages.</param>
    /// <exception cref="StateFormatException">A queue's rings lie outside guest memory; the device is then reset.</exception>
    public void BindRestored(GuestMemory memory, IVirtioInterrupt interrupt, string component)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(interrupt);
        lock (Sync)
        {
            _interrupt = interrupt;
            if (!_restoredActive)
            {
                return;
            }
            try
            {
                for (int i = 0; i < _queues.Length; i++)
                {
                    _queues[i].BindRestored(memory, $"{component}/queue {i}");
                }
            }
            catch
            {
                Reset();
                throw;
            }
            _restoredActive = false;
            _memory = memory;
            OnRestored();
        }
    }

    /// <summary>Writes the device's own state (after the common part); called under <see cref="Sync"/>.</summary>
    protected virtual void SaveDeviceState(StateWriter writer)
    {
    }

    /// <summary>Reads what <see cref="SaveDeviceState"/> wrote, validating every value; called under <see cref="Sync"/>.</summary>
    /// <param name="reader">The state, after the common part.</param>
    /// <param name="version">The <see cref="StateVersion"/> it was written with.</param>
    protected virtual void RestoreDeviceState(ref StateReader reader, ushort version)
    {
    }

    /// <summary>Called under <see cref="Sync"/> when a restored active device has its memory and interrupt back.</summary>
    protected virtual void OnRestored()
    {
    }

    /// <summary>Called after <see cref="Pause"/> set the flag (outside <see cref="Sync"/>): a device with its own threads waits for them here.</summary>
    protected virtual void OnPause()
    {
    }

    /// <summary>Called after <see cref="Resume"/> cleared the flag (outside <see cref="Sync"/>): a device with its own threads wakes them here.</summary>
    protected virtual void OnResume()
    {
    }

    private void ReadCommonState(ref StateReader reader)
    {
        ushort common = reader.ReadUInt16("common state version");
        StateFormatException.ThrowIfUnknownVersion($"{reader.Component} (common part)", common, CommonStateVersion);
        uint type = reader.ReadUInt32("device type");
        if (type != (uint)DeviceType)
        {
            throw reader.Invalid("device type", type, $"is not this device's {(uint)DeviceType} ({Name})");
        }
        ulong offered = reader.ReadUInt64("device features");
        if (offered != DeviceFeatures)
        {
            throw reader.Invalid("device features", $"0x{offered:x}", $"differ from the 0x{DeviceFeatures:x} this {Name} offers (configured differently?)");
        }
        bool active = reader.ReadBool("active");
        ulong features = reader.ReadUInt64("driver features");
        if ((features & ~DeviceFeatures) != 0)
        {
            throw reader.Invalid("driver features", $"0x{features:x}", $"include bits the device does not offer (0x{DeviceFeatures:x})");
        }
        if (active && (features & VirtioFeatures.Version1) == 0)
        {
            throw reader.Invalid("driver features", $"0x{features:x}", "lack VIRTIO_F_VERSION_1 on an active device");
        }
        bool needsReset = reader.ReadBool("needs reset");
        string? failure = reader.ReadBool("failure present") ? reader.ReadString(MaxFailureBytes, "failure") : null;
        ushort count = reader.ReadUInt16("queue count");
        if (count != _queues.Length)
        {
            throw reader.Invalid("queue count", count, $"is not this device's {_queues.Length}");
        }
        for (int i = 0; i < _queues.Length; i++)
        {
            reader.ReadSection(_queues[i], $"queue {i}");
            Virtqueue q = _queues[i];
            if (q.AwaitsMemory && !active && !needsReset)
            {
                // A device whose activation failed part-way keeps the queues it activated until the driver resets it.
                throw reader.Invalid($"queue {i} active", true, "but the device is neither active nor failed");
            }
            if (q.AwaitsMemory && q.EventIdx != ((features & VirtioFeatures.RingEventIdx) != 0))
            {
                throw reader.Invalid($"queue {i} event idx", q.EventIdx, "disagrees with the driver features");
            }
        }
        DriverFeatures = features;
        _needsReset = needsReset;
        Failure = failure;
        _failureLogged = needsReset;
        _restoredActive = active;
    }
}
