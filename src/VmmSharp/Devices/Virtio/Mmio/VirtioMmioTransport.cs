using System.Buffers.Binary;
using VmmSharp.Buses;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Interop;
using VmmSharp.Memory;
using R = VmmSharp.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace VmmSharp.Devices.Virtio.Mmio;

/// <summary>
/// The virtio-mmio transport (virtio 1.2 §4.2.2, version 2): a 4 KiB register window on the MMIO bus in front of a
/// <see cref="VirtioDevice"/>.
/// </summary>
/// <remarks>
/// <para>Notifications: a write to QueueNotify signals <see cref="NotifyEvent"/>; the machine normally registers that
/// eventfd with KVM (ioeventfd on <see cref="NotifyAddress"/>) so such writes never reach this class, and adds it to an
/// <see cref="Events.EventLoop"/> whose thread calls <see cref="OnNotifyEvent"/>. Where the host has no ioeventfd, the
/// write arrives here as an MMIO exit and this class signals the same eventfd: either way the device works on the
/// loop's thread, never the vCPU's.</para>
/// <para>Interrupts: InterruptStatus collects the reasons; each new reason raises the interrupt line (an edge: an
/// irqfd, or KVM_IRQ_LINE as fallback); InterruptACK clears them and lowers the line when none remain.</para>
/// <para>Register accesses come from vCPU threads and are serialised by a lock; a device's activation and reset happen
/// under that lock too.</para>
/// </remarks>
public sealed partial class VirtioMmioTransport : IMmioDevice, IVirtioInterrupt, IDisposable
{
    private readonly VirtioDevice _device;
    private readonly GuestMemory _memory;
    private readonly IIrqLine _irq;
    private readonly Lock _lock = new();
    private uint _deviceFeaturesSel, _driverFeaturesSel, _queueSel;
    private ulong _driverFeatures;
    private uint _status;
    private uint _interruptStatus;
    private uint _configGeneration;

    /// <summary>Puts <paramref name="device"/> behind a register window at <paramref name="baseAddress"/>.</summary>
    /// <param name="device">The device model.</param>
    /// <param name="memory">Guest memory the device's queues live in.</param>
    /// <param name="baseAddress">The window's guest-physical address (used for <see cref="NotifyAddress"/>).</param>
    /// <param name="irq">The interrupt line, raised once per interrupt (edge).</param>
    public VirtioMmioTransport(VirtioDevice device, GuestMemory memory, ulong baseAddress, IIrqLine irq)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(irq);
        _device = device;
        _memory = memory;
        _irq = irq;
        BaseAddress = baseAddress;
    }

    /// <summary>The device behind the window.</summary>
    public VirtioDevice Device => _device;

    /// <summary>The window's guest-physical address.</summary>
    public ulong BaseAddress { get; }

    /// <summary>The QueueNotify register's guest-physical address: where an ioeventfd goes.</summary>
    public ulong NotifyAddress => BaseAddress + R.QueueNotify;

    /// <summary>Signalled for every queue notification; whoever waits on it calls <see cref="OnNotifyEvent"/>.</summary>
    public EventFd NotifyEvent { get; } = new();

    /// <summary>How many notifications arrived as MMIO exits (the fallback when there is no ioeventfd).</summary>
    public long NotifyExits => Volatile.Read(ref _notifyExits);

    private long _notifyExits;

    /// <summary>The device status register.</summary>
    public VirtioStatus Status => (VirtioStatus)Volatile.Read(ref _status) | (_device.NeedsReset ? VirtioStatus.DeviceNeedsReset : 0);

    /// <summary>The InterruptStatus register.</summary>
    public uint InterruptStatus => Volatile.Read(ref _interruptStatus);

    /// <summary>
    /// A queue notification arrived (on the event loop's thread): the notify register carries no queue number here
    /// (the ioeventfd matches any value), so every queue gets a look; an idle one costs one read of its index.
    /// </summary>
    public void OnNotifyEvent()
    {
        for (int q = 0; q < _device.Queues.Count; q++)
        {
            _device.Notify(q);
        }
    }

    /// <inheritdoc/>
    public void SignalUsedBuffers() => Raise(R.InterruptUsedBuffer);

    /// <inheritdoc/>
    public void SignalConfigChange()
    {
        Interlocked.Increment(ref _configGeneration);
        Raise(R.InterruptConfigChange);
    }

    /// <inheritdoc/>
    public void Read(ulong offset, Span<byte> data)
    {
        if (offset >= R.Config)
        {
            ulong configOffset = offset - R.Config;
            if (configOffset <= uint.MaxValue)
            {
                _device.ReadConfig((uint)configOffset, data);
            }
            else
            {
                data.Clear();
            }
            return;
        }
        // Registers are 32 bits wide; other widths read as zero.
        uint value = data.Length == 4 ? ReadRegister((uint)offset) : 0;
        data.Clear();
        if (data.Length == 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(data, value);
        }
    }

    /// <inheritdoc/>
    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset >= R.Config)
        {
            ulong configOffset = offset - R.Config;
            if (configOffset <= uint.MaxValue)
            {
                _device.WriteConfig((uint)configOffset, data);
            }
            return;
        }
        if (data.Length == 4)
        {
            WriteRegister((uint)offset, BinaryPrimitives.ReadUInt32LittleEndian(data));
        }
    }

    /// <summary>Releases the notification eventfd.</summary>
    public void Dispose() => NotifyEvent.Dispose();

    private uint ReadRegister(uint offset)
    {
        lock (_lock)
        {
            Virtqueue? q = (uint)_queueSel < (uint)_device.Queues.Count ? _device.Queues[(int)_queueSel] : null;
            return offset switch
            {
                R.Magic => R.MagicValue,
                R.Version => R.Version2,
                R.DeviceId => (uint)_device.DeviceType,
                R.VendorId => R.VendorIdValue,
                R.DeviceFeatures => _deviceFeaturesSel switch
                {
                    0 => (uint)_device.DeviceFeatures,
                    1 => (uint)(_device.DeviceFeatures >> 32),
                    _ => 0,
                },
                R.QueueNumMax => q?.MaxSize ?? 0,
                R.QueueNum => q?.Size ?? 0,
                R.QueueReady => q is { Ready: true } ? 1u : 0u,
                R.InterruptStatus => Volatile.Read(ref _interruptStatus),
                R.Status => (uint)Status,
                R.QueueDescLow => (uint)(q?.DescriptorTable ?? 0),
                R.QueueDescHigh => (uint)((q?.DescriptorTable ?? 0) >> 32),
                R.QueueDriverLow => (uint)(q?.DriverArea ?? 0),
                R.QueueDriverHigh => (uint)((q?.DriverArea ?? 0) >> 32),
                R.QueueDeviceLow => (uint)(q?.DeviceArea ?? 0),
                R.QueueDeviceHigh => (uint)((q?.DeviceArea ?? 0) >> 32),
                R.ConfigGeneration => Volatile.Read(ref _configGeneration),
                _ => 0,
            };
        }
    }

    private void WriteRegister(uint offset, uint value)
    {
        if (offset == R.QueueNotify)
        {
            // Only without an ioeventfd: hand the work to the event loop, as the ioeventfd would have.
            Interlocked.Increment(ref _notifyExits);
            if ((_status & (uint)VirtioStatus.DriverOk) != 0)
            {
                NotifyEvent.Signal();
            }
            return;
        }
        lock (_lock)
        {
            Virtqueue? q = (uint)_queueSel < (uint)_device.Queues.Count ? _device.Queues[(int)_queueSel] : null;
            // Queue registers may only change while the queue is not ready and the device not running (§4.2.2.3).
            bool queueWritable = q is { Ready: false } && (_status & (uint)VirtioStatus.DriverOk) == 0;
            switch (offset)
            {
                case R.DeviceFeaturesSel:
                    _deviceFeaturesSel = value;
                    break;
                case R.DriverFeaturesSel:
                    _driverFeaturesSel = value;
                    break;
                case R.DriverFeatures when (_status & (uint)VirtioStatus.FeaturesOk) == 0:
                    if (_driverFeaturesSel == 0)
                    {
                        _driverFeatures = (_driverFeatures & 0xFFFF_FFFF_0000_0000) | value;
                    }
                    else if (_driverFeaturesSel == 1)
                    {
                        _driverFeatures = (_driverFeatures & 0xFFFF_FFFF) | ((ulong)value << 32);
                    }
                    break;
                case R.QueueSel:
                    _queueSel = value;
                    break;
                case R.QueueNum when queueWritable:
                    q!.Size = (ushort)Math.Min(value, ushort.MaxValue);
                    break;
                case R.QueueReady when q is not null:
                    q.Ready = value == 1;
                    break;
                case R.QueueDescLow when queueWritable:
                    q!.DescriptorTable = (q.DescriptorTable & 0xFFFF_FFFF_0000_0000) | value;
                    break;
                case R.QueueDescHigh when queueWritable:
                    q!.DescriptorTable = (q.DescriptorTable & 0xFFFF_FFFF) | ((ulong)value << 32);
                    break;
                case R.QueueDriverLow when queueWritable:
                    q!.DriverArea = (q.DriverArea & 0xFFFF_FFFF_0000_0000) | value;
                    break;
                case R.QueueDriverHigh when queueWritable:
                    q!.DriverArea = (q.DriverArea & 0xFFFF_FFFF) | ((ulong)value << 32);
                    break;
                case R.QueueDeviceLow when queueWritable:
                    q!.DeviceArea = (q.DeviceArea & 0xFFFF_FFFF_0000_0000) | value;
                    break;
                case R.QueueDeviceHigh when queueWritable:
                    q!.DeviceArea = (q.DeviceArea & 0xFFFF_FFFF) | ((ulong)value << 32);
                    break;
                case R.InterruptAck:
                    if ((Interlocked.And(ref _interruptStatus, ~value) & ~value) == 0)
                    {
                        _irq.Set(false);
                    }
                    break;
                case R.Status:
                    WriteStatus(value);
                    break;
                default:
                    break;
            }
        }
    }

    private void WriteStatus(uint value)
    {
        if (value == 0)
        {
            _device.Reset();
            _status = 0;
            _driverFeatures = 0;
            _deviceFeaturesSel = _driverFeaturesSel = _queueSel = 0;
            Volatile.Write(ref _interruptStatus, 0);
            _irq.Set(false);
            return;
        }
        uint added = value & ~_status;
        uint bits = value & ~(uint)VirtioStatus.DeviceNeedsReset;
        if ((added & (uint)VirtioStatus.FeaturesOk) != 0)
        {
            // The driver may only accept what is offered, and this transport has no legacy interface (§6.1).
            bool acceptable = (_driverFeatures & ~_device.DeviceFeatures) == 0 && (_driverFeatures & VirtioFeatures.Version1) != 0;
            if (!acceptable)
            {
                bits &= ~(uint)VirtioStatus.FeaturesOk;
            }
        }
        if ((added & (uint)VirtioStatus.DriverOk) != 0 && (bits & (uint)VirtioStatus.FeaturesOk) != 0)
        {
            Volatile.Write(ref _status, bits);
            _device.Activate(_memory, _driverFeatures, this);
            // Buffers made available before DRIVER_OK were not announced: look once.
            NotifyEvent.Signal();
            return;
        }
        Volatile.Write(ref _status, bits);
    }

    private void Raise(uint reason)
    {
        Interlocked.Or(ref _interruptStatus, reason);
        _irq.Set(true);
    }
}
