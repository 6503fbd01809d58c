using VmmSharp.State;
using R = VmmSharp.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace VmmSharp.Devices.Virtio.Mmio;

/// <content>
/// The transport's state in a snapshot: the driver-visible registers (status, feature selects, the features the driver
/// wrote, queue select, interrupt status, config generation), then the device's section (its queues included).
/// </content>
public sealed partial class VirtioMmioTransport : IStateful
{
    private const uint KnownStatusBits = (uint)(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.DriverOk
        | VirtioStatus.FeaturesOk | VirtioStatus.Failed);

    /// <inheritdoc/>
    public ushort StateVersion => 1;

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        lock (_lock)
        {
            writer.WriteUInt32(_status);
            writer.WriteUInt32(_deviceFeaturesSel);
            writer.WriteUInt32(_driverFeaturesSel);
            writer.WriteUInt64(_driverFeatures);
            writer.WriteUInt32(_queueSel);
            writer.WriteUInt32(Volatile.Read(ref _interruptStatus));
            writer.WriteUInt32(Volatile.Read(ref _configGeneration));
            writer.WriteSection(_device);
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Restore after guest memory and the interrupt controller: an interrupt the device had pending (InterruptStatus
    /// not 0) is raised again on the line, and a running device is notified once (<see cref="Kick"/>) so that buffers
    /// the guest made available before the snapshot are served even though their notification was not saved.
    /// A refused state leaves the transport and the device reset.
    /// </remarks>
    public void RestoreState(ref StateReader reader, ushort version)
    {
        StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);
        lock (_lock)
        {
            try
            {
                Read(ref reader);
            }
            catch
            {
                ResetRegisters();
                throw;
            }
        }
        if (InterruptStatus != 0)
        {
            _irq.Set(true);
        }
        Kick();
    }

    /// <summary>
    /// Makes the device look at its queues once, as a notification would (on the event loop's thread, when it runs);
    /// does nothing before DRIVER_OK. Used after a restore or a resume, where a notification may have been lost.
    /// </summary>
    public void Kick()
    {
        if ((Volatile.Read(ref _status) & (uint)VirtioStatus.DriverOk) != 0)
        {
            NotifyEvent.Signal();
        }
    }

    private void Read(ref StateReader reader)
    {
        uint status = reader.ReadUInt32("status");
        if ((status & ~KnownStatusBits) != 0)
        {
            throw reader.Invalid("status", $"0x{status:x}", $"has bits outside 0x{KnownStatusBits:x}");
        }
        uint deviceSel = reader.ReadUInt32("device features select");
        uint driverSel = reader.ReadUInt32("driver features select");
        ulong driverFeatures = reader.ReadUInt64("driver features");
        uint queueSel = reader.ReadUInt32("queue select");
        uint interruptStatus = reader.ReadUInt32("interrupt status");
        if ((interruptStatus & ~(R.InterruptUsedBuffer | R.InterruptConfigChange)) != 0)
        {
            throw reader.Invalid("interrupt status", $"0x{interruptStatus:x}", "has bits other than used buffer (1) and config change (2)");
        }
        uint generation = reader.ReadUInt32("config generation");
        if ((status & (uint)VirtioStatus.FeaturesOk) != 0
            && ((driverFeatures & ~_device.DeviceFeatures) != 0 || (driverFeatures & VirtioFeatures.Version1) == 0))
        {
            throw reader.Invalid("driver features", $"0x{driverFeatures:x}", "were never acceptable with FEATURES_OK set");
        }

        reader.ReadSection(_device, "device");
        _device.BindRestored(_memory, this, reader.Component + "/device");

        _status = status;
        _deviceFeaturesSel = deviceSel;
        _driverFeaturesSel = driverSel;
        _driverFeatures = driverFeatures;
        _queueSel = queueSel;
        Volatile.Write(ref _interruptStatus, interruptStatus);
        Volatile.Write(ref _configGeneration, generation);
    }

    private void ResetRegisters()
    {
        _device.Reset();
        _status = 0;
        _driverFeatures = 0;
        _deviceFeaturesSel = _driverFeaturesSel = _queueSel = 0;
        Volatile.Write(ref _interruptStatus, 0);
        Volatile.Write(ref _configGeneration, 0);
    }
}
