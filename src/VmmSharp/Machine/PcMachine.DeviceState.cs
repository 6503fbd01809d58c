using VmmSharp.Devices.Legacy;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.State;

namespace VmmSharp.Machine;

/// <content>
/// Every device's state into and out of a snapshot, and quiescing the device threads for a pause. The vCPUs are the
/// caller's: pause them first (devices are also driven from vCPU threads), then <see cref="PauseDevices"/>.
/// </content>
public sealed partial class PcMachine
{
    /// <summary>How long a pause waits for the event loop to finish what it is doing.</summary>
    private static readonly TimeSpan EventLoopPauseDeadline = TimeSpan.FromSeconds(10);

    private readonly CmosRtc _cmos;
    private readonly FwCfg _fwCfg;
    private readonly AcpiSleepControl _acpiSleep;
    private bool _devicesPaused;

    /// <summary>Whether <see cref="PauseDevices"/> holds the device threads.</summary>
    public bool DevicesPaused => _devicesPaused;

    /// <summary>
    /// Holds every device thread: the event loop (virtio notifications, network receive) finishes the batch it is
    /// serving and parks; each virtio device completes the requests it took (virtio-blk's worker finishes its requests
    /// before this returns, as Firecracker completes in-flight I/O before a snapshot) and takes no more; host console
    /// input is refused until <see cref="ResumeDevices"/>. Afterwards no device thread writes guest memory or changes
    /// a device's state; the console's output thread (host side) runs on. Pausing twice does nothing.
    /// </summary>
    /// <exception cref="VmmException">The event loop did not park in time (a subscriber is stuck); the devices are resumed.</exception>
    public void PauseDevices()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_devicesPaused)
        {
            return;
        }
        Serial.Pause();
        if (_events is { } events && !events.Pause(EventLoopPauseDeadline))
        {
            events.Resume();
            Serial.Resume();
            throw new VmmException($"event loop '{events.Name}' did not pause within {EventLoopPauseDeadline.TotalSeconds} s");
        }
        foreach (VirtioDevice device in _virtioModels)
        {
            device.Pause();
        }
        _devicesPaused = true;
    }

    /// <summary>
    /// Lets the device threads run again. Each running virtio device is notified once, so that buffers the guest made
    /// available meanwhile (or before a restore) are served. Resuming running devices does nothing.
    /// </summary>
    public void ResumeDevices()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_devicesPaused)
        {
            return;
        }
        _devicesPaused = false;
        foreach (VirtioDevice device in _virtioModels)
        {
            device.Resume();
        }
        foreach (VirtioMmioTransport transport in _virtio)
        {
            transport.Kick();
        }
        _events?.Resume();
        Serial.Resume();
    }

    /// <summary>
    /// Writes every device's state as named, versioned sections in a fixed order: COM1 ("serial"), "i8042", "cmos",
    /// "fw_cfg", "acpi-sleep", then the number of virtio-mmio devices and each transport with its device and queues
    /// ("virtio 0", "virtio 1", … in slot order). Call with the vCPUs and the devices paused, or before the machine runs.
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine is running and its devices are not paused.</exception>
    public void SaveDevices(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ObjectDisposedException.ThrowIf(_disposed, this);
        EnsureDevicesStill(nameof(SaveDevices));
        writer.WriteSection(Serial);
        writer.WriteSection(Keyboard);
        writer.WriteSection(_cmos);
        writer.WriteSection(_fwCfg);
        writer.WriteSection(_acpiSleep);
        writer.WriteUInt16((ushort)_virtio.Count);
        foreach (VirtioMmioTransport transport in _virtio)
        {
            writer.WriteSection(transport);
        }
    }

    /// <summary>
    /// Restores what <see cref="SaveDevices"/> wrote into this machine, which must have the same devices (the same
    /// options): call after guest memory and the VM's interrupt controllers are restored, with the devices paused or
    /// before the machine runs. Interrupts the devices had pending are raised again and running virtio devices look at
    /// their queues once they run. A refused state leaves the device that refused it reset.
    /// </summary>
    /// <exception cref="StateFormatException">The state is truncated, of an unknown version, for other devices, or
    /// holds a value a device cannot take; the message names the device and the field.</exception>
    /// <exception cref="InvalidOperationException">The machine is running and its devices are not paused.</exception>
    public void RestoreDevices(ref StateReader reader)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        EnsureDevicesStill(nameof(RestoreDevices));
        reader.ReadSection(Serial, "serial");
        reader.ReadSection(Keyboard, "i8042");
        reader.ReadSection(_cmos, "cmos");
        reader.ReadSection(_fwCfg, "fw_cfg");
        reader.ReadSection(_acpiSleep, "acpi-sleep");
        ushort count = reader.ReadUInt16("virtio device count");
        if (count != _virtio.Count)
        {
            throw reader.Invalid("virtio device count", count, $"is not this machine's {_virtio.Count} (started with other devices?)");
        }
        for (int i = 0; i < _virtio.Count; i++)
        {
            reader.ReadSection(_virtio[i], $"virtio {i}");
        }
    }

    private void EnsureDevicesStill(string operation)
    {
        if (!_devicesPaused && _events is { IsRunning: true })
        {
            throw new InvalidOperationException($"{operation} needs the devices paused (PauseDevices) while the machine runs");
        }
    }
}
