using Microsoft.Extensions.Logging;
using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Virtio.Queues;

namespace VmmSharp.Devices.Virtio.Console;

/// <summary>
/// virtio-console (virtio 1.2 §5.3) with one port and no optional features: the guest's hvc0. What the guest
/// transmits goes to a <see cref="ConsoleOutput"/>; <see cref="EnqueueInput"/> hands host bytes to the guest's receive buffers.
/// </summary>
/// <remarks>
/// Output goes into the console's bounded buffer, drained by its own thread: a stalled terminal never blocks the event
/// loop (what does not fit is dropped and counted by the <see cref="ConsoleOutput"/>, as for COM1 without flow control).
/// Input is bounded by the guest's posted receive buffers: what does not fit is not taken, and the caller offers it again.
/// </remarks>
public sealed class VirtioConsole : VirtioDevice
{
    /// <summary>Each queue's size.</summary>
    public const ushort QueueSize = 64;

    private const int ReceiveQueue = 0, TransmitQueue = 1;
    private const int ConfigLength = 12;

    private readonly ConsoleOutput _output;
    private readonly DescriptorChain _chain = new(QueueSize);
    private readonly DescriptorChain _rxChain = new(QueueSize);
    private readonly Func<DescriptorChain, uint> _transmit;
    private readonly byte[] _copy = new byte[4096];

    /// <summary>Creates the device writing the guest's output to <paramref name="output"/> (not disposed by it).</summary>
    public VirtioConsole(ConsoleOutput output, ILogger? logger = null)
        : base(VirtioDeviceType.Console, 0, [QueueSize, QueueSize], logger)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _transmit = Transmit;
    }

    /// <inheritdoc/>
    public override int ConfigSize => ConfigLength;

    /// <summary>How many bytes the guest has transmitted.</summary>
    public long BytesTransmitted { get; private set; }

    /// <summary>
    /// Puts as much of <paramref name="input"/> as the guest's receive buffers hold into them; returns how many bytes
    /// were taken (0 while the driver is not ready or has posted no buffers, or the device is paused). Safe from any thread.
    /// </summary>
    public int EnqueueInput(ReadOnlySpan<byte> input)
    {
        lock (Sync)
        {
            if (!IsActive || NeedsReset || IsPaused || !Queues[ReceiveQueue].IsActive)
            {
                return 0;
            }
            Virtqueue q = Queues[ReceiveQueue];
            int taken = 0;
            while (taken < input.Length)
            {
                QueuePop pop = q.TryPop(_rxChain);
                if (pop == QueuePop.Error)
                {
                    Fail($"queue {ReceiveQueue}: {q.Error}");
                    return taken;
                }
                if (pop == QueuePop.Empty)
                {
                    // Buffers are put back unconsumed only by a pop; an empty ring just means "later".
                    q.ArmNotification();
                    break;
                }
                uint written = 0;
                foreach (ChainSegment s in _rxChain.Writable)
                {
                    int n = (int)Math.Min(s.Length, (uint)(input.Length - taken));
                    if (n == 0 || !Memory.TryWrite(s.Address, input.Slice(taken, n)))
                    {
                        break;
                    }
                    taken += n;
                    written += (uint)n;
                }
                if (!q.TryPushUsed(_rxChain.Head, written))
                {
                    Fail($"queue {ReceiveQueue}: {q.Error}");
                    return taken;
                }
            }
            if (q.NeedsInterrupt())
            {
                Interrupt.SignalUsedBuffers();
            }
            return taken;
        }
    }

    /// <inheritdoc/>
    protected override void ReadConfigSpace(uint offset, Span<byte> data) => data.Clear(); // no size, no ports: all zero

    /// <inheritdoc/>
    protected override void OnNotify(int queue)
    {
        if (queue == TransmitQueue)
        {
            Drain(TransmitQueue, _chain, _transmit);
        }
        // Receive buffers posted: nothing to do until input arrives.
    }

    private uint Transmit(DescriptorChain chain)
    {
        foreach (ChainSegment s in chain.Readable)
        {
            ulong address = s.Address;
            uint remaining = s.Length;
            while (remaining > 0)
            {
                int n = (int)Math.Min(remaining, (uint)_copy.Length);
                if (!Memory.TryRead(address, _copy.AsSpan(0, n)))
                {
                    return 0;
                }
                _output.Write(_copy.AsSpan(0, n));
                BytesTransmitted += n;
                address += (ulong)n;
                remaining -= (uint)n;
            }
        }
        return 0;
    }
}
