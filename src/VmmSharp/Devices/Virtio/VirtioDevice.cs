using Microsoft.Extensions.Logging;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Memory;

namespace VmmSharp.Devices.Virtio;

/// <summary>
/// A virtio device model: its queues, its feature set, its configuration space and an interrupt request, and
/// nothing of the transport or of KVM, so any transport (virtio-mmio today, virtio-pci later) can carry it.
/// </summary>
/// <remarks>
/// <para>Lifecycle, driven by the transport: <see cref="Activate"/> when the driver sets DRIVER_OK, <see cref="Notify"/>
/// for each queue notification (on the event loop's thread), <see cref="Reset"/> when the driver writes status 0.
/// All three hold <see cref="Sync"/>, so a reset never overlaps queue processing; a device that works on another
/// thread (an I/O worker, host input) takes <see cref="Sync"/> there too, and does nothing while <see cref="IsPaused"/>.</para>
/// <para>A device that finds the guest breaking the rules calls <see cref="Fail"/>: it sets DEVICE_NEEDS_RESET,
/// logs the first such failure at Warning, stops serving its queues until the driver resets it, and raises a
/// configuration-change interrupt; the VMM and the other devices carry on.</para>
/// </remarks>
public abstract partial class VirtioDevice : IDisposable
{
    private readonly Virtqueue[] _queues;
    private readonly ILogger? _logger;
    private IVirtioInterrupt? _interrupt;
    private GuestMemory? _memory;
    private volatile bool _needsReset;
    private bool _failureLogged;

    /// <summary>Creates a device of <paramref name="type"/> offering <paramref name="features"/> (plus <see cref="VirtioFeatures.Common"/>).</summary>
    /// <param name="type">The virtio device id.</param>
    /// <param name="features">Device-specific feature bits.</param>
    /// <param name="queueSizes">Each queue's maximum size (a power of two).</param>
    /// <param name="logger">Receives the first guest error; null for none.</param>
    protected VirtioDevice(VirtioDeviceType type, ulong features, ReadOnlySpan<ushort> queueSizes, ILogger? logger)
    {
        DeviceType = type;
        DeviceFeatures = features | VirtioFeatures.Common;
        _logger = logger;
        _queues = new Virtqueue[queueSizes.Length];
        for (int i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new Virtqueue(queueSizes[i]);
        }
        Name = type switch
        {
            VirtioDeviceType.Block => "virtio-blk",
            VirtioDeviceType.Net => "virtio-net",
            VirtioDeviceType.Console => "virtio-console",
            VirtioDeviceType.Rng => "virtio-rng",
            VirtioDeviceType.Vsock => "virtio-vsock",
            _ => $"virtio device {type}",
        };
    }

    /// <summary>The virtio device id.</summary>
    public VirtioDeviceType DeviceType { get; }

    /// <summary>What the device offers.</summary>
    public ulong DeviceFeatures { get; }

    /// <summary>What the driver accepted, as of <see cref="Activate"/>; 0 before.</summary>
    public ulong DriverFeatures { get; private set; }

    /// <summary>The name in log messages, e.g. "virtio-blk (disk.img)".</summary>
    public string Name { get; init; }

    /// <summary>The queues; the transport configures them from the driver's registers.</summary>
    public IReadOnlyList<Virtqueue> Queues => _queues;

    /// <summary>The size of the device-specific configuration space in bytes.</summary>
    public abstract int ConfigSize { get; }

    /// <summary>Whether the driver set DRIVER_OK and the device accepted its queues.</summary>
    public bool IsActive => _memory is not null;

    /// <summary>Whether the device set DEVICE_NEEDS_RESET (the guest broke a rule); cleared by <see cref="Reset"/>.</summary>
    public bool NeedsReset => _needsReset;

    /// <summary>The first guest error since the last reset, if any.</summary>
    public string? Failure { get; private set; }

    /// <summary>Held by activation, reset and queue processing.</summary>
    protected Lock Sync { get; } = new();

    /// <summary>Guest memory while active.</summary>
    protected GuestMemory Memory => _memory ?? throw new InvalidOperationException($"{Name} is not active");

    /// <summary>The interrupt request while active.</summary>
    protected IVirtioInterrupt Interrupt => _interrupt ?? throw new InvalidOperationException($"{Name} is not active");

    /// <summary>Reads <c>data.Length</c> bytes of configuration space at <paramref name="offset"/>; bytes past its end read as zero.</summary>
    public void ReadConfig(uint offset, Span<byte> data)
    {
        data.Clear();
        if (offset < ConfigSize)
        {
            int n = (int)Math.Min((uint)data.Length, (uint)ConfigSize - offset);
            ReadConfigSpace(offset, data[..n]);
        }
    }

    /// <summary>Writes configuration space; devices whose configuration the driver cannot write ignore it.</summary>
    public virtual void WriteConfig(uint offset, ReadOnlySpan<byte> data)
    {
    }

    /// <summary>
    /// Starts the device with the driver's <paramref name="features"/> over <paramref name="memory"/>: activates every
    /// ready queue. Returns false (and sets DEVICE_NEEDS_RESET) if a queue's configuration is unusable.
    /// </summary>
    public bool Activate(GuestMemory memory, ulong features, IVirtioInterrupt interrupt)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(interrupt);
        lock (Sync)
        {
            _interrupt = interrupt;
            DriverFeatures = features;
            for (int i = 0; i < _queues.Length; i++)
            {
                if (_queues[i].Ready && !_queues[i].TryActivate(memory, features, out string? error))
                {
                    Fail($"queue {i}: {error}");
                    return false;
                }
            }
            _memory = memory;
            OnActivate();
            return true;
        }
    }

    /// <summary>Returns the device to its initial state, as a driver's write of status 0 does.</summary>
    public void Reset()
    {
        lock (Sync)
        {
            if (_memory is not null)
            {
                OnReset();
            }
            _memory = null;
            foreach (Virtqueue q in _queues)
            {
                q.Reset();
            }
            DriverFeatures = 0;
            _needsReset = false;
            Failure = null;
            _restoredActive = false;
        }
    }

    /// <summary>The driver notified queue <paramref name="queue"/> (or, without a queue number, any queue): process it.</summary>
    public void Notify(int queue)
    {
        lock (Sync)
        {
            if (_paused)
            {
                _notifiedWhilePaused = true; // served by Resume
                return;
            }
            if (_memory is not null && !_needsReset && (uint)queue < (uint)_queues.Length && _queues[queue].IsActive)
            {
                OnNotify(queue);
            }
        }
    }

    /// <summary>Stops the device's own threads, if any.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the device's resources.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>Copies configuration space [<paramref name="offset"/>, + <c>data.Length</c>), which lies inside it.</summary>
    protected abstract void ReadConfigSpace(uint offset, Span<byte> data);

    /// <summary>Called under <see cref="Sync"/> when the device becomes active.</summary>
    protected virtual void OnActivate()
    {
    }

    /// <summary>Called under <see cref="Sync"/> when an active device is reset.</summary>
    protected virtual void OnReset()
    {
    }

    /// <summary>Called under <see cref="Sync"/> for a notification of an active queue.</summary>
    protected abstract void OnNotify(int queue);

    /// <summary>
    /// Takes every available chain of queue <paramref name="queue"/>, hands each to <paramref name="handle"/> (which
    /// returns the bytes it wrote into the chain), returns them to the used ring, and raises the interrupt if the driver
    /// wants one. A broken ring fails the device. Call under <see cref="Sync"/>; allocates nothing.
    /// </summary>
    protected void Drain(int queue, DescriptorChain chain, Func<DescriptorChain, uint> handle)
    {
        ArgumentNullException.ThrowIfNull(chain);
        ArgumentNullException.ThrowIfNull(handle);
        Virtqueue q = _queues[queue];
        do
        {
            while (!_needsReset)
            {
                QueuePop pop = q.TryPop(chain);
                if (pop == QueuePop.Empty)
                {
                    break;
                }
                if (pop == QueuePop.Error)
                {
                    Fail($"queue {queue}: {q.Error}");
                    break;
                }
                uint written = handle(chain);
                if (_needsReset || !q.TryPushUsed(chain.Head, written))
                {
                    if (!_needsReset)
                    {
                        Fail($"queue {queue}: {q.Error}");
                    }
                    break;
                }
            }
        }
        while (!_needsReset && q.ArmNotification());
        if (q.IsActive && q.NeedsInterrupt())
        {
            Interrupt.SignalUsedBuffers();
        }
    }

    /// <summary>
    /// The guest broke a rule the device cannot answer with an error status: set DEVICE_NEEDS_RESET, log the first
    /// time, and tell the driver through a configuration-change interrupt.
    /// </summary>
    protected void Fail(string reason)
    {
        if (_needsReset)
        {
            return;
        }
        Failure = reason;
        _needsReset = true;
        if (!_failureLogged && _logger is not null)
        {
            LogGuestError(_logger, Name, reason);
        }
        _failureLogged = true;
        _interrupt?.SignalConfigChange();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Device}: the guest broke the virtio rules ({Reason}); the device needs a reset (later errors are not logged)")]
    private static partial void LogGuestError(ILogger logger, string device, string reason);
}
