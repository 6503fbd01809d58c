using Microsoft.Extensions.Logging;
using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Virtio.Queues;

namespace VmmSharp.Devices.Virtio.Console;

/// <summary>
/// virtio-console (virtio 1.2 §5.3) with one port and no optional features: the guest's hvc0. What the guest
/// transmits goes to a <see cref="ConsoleOutput"/>; <see cref="EnqueueInput"/> hands host bytes to the guest's receive buffers.
/// </summary>
/// <remarks>
/// <para>Output goes into the console's bounded buffer, drained by its own thread, so a stalled terminal never blocks
/// the event loop; and it pushes back as the 8250 does: while the buffer is full the device takes no more transmit
/// chains from the guest (the one it is in the middle of stays in the ring, with how far it got), so the guest's
/// hvc driver waits instead of losing output. When the buffer drains (<see cref="ConsoleOutput.SpaceAvailable"/>,
/// on the output's writer thread) the device carries on where it stopped.</para>
/// <para>Input is bounded by the guest's posted receive buffers: what does not fit is not taken, and the caller offers it again.</para>
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
    private readonly Action _onDrained;
    private readonly byte[] _copy = new byte[4096];

    // How many bytes of the transmit chain at the ring's head went out before the console filled up; the chain stays
    // in the ring until the rest has gone too.
    private ulong _txDone;
    private bool _txStalled;

    /// <summary>Creates the device writing the guest's output to <paramref name="output"/> (not disposed by it).</summary>
    public VirtioConsole(ConsoleOutput output, ILogger? logger = null)
        : base(VirtioDeviceType.Console, 0, [QueueSize, QueueSize], logger)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _onDrained = OnOutputDrained;
        _output.SpaceAvailable += _onDrained;
    }

    /// <inheritdoc/>
    public override int ConfigSize => ConfigLength;

    /// <summary>How many bytes the guest has transmitted.</summary>
    public long BytesTransmitted { get; private set; }

    /// <summary>Whether transmission waits for the console to drain (the guest's output is held in its ring meanwhile).</summary>
    public bool TransmitStalled
    {
        get
        {
            lock (Sync)
            {
                return _txStalled;
            }
        }
    }

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
            Transmit();
        }
        // Receive buffers posted: nothing to do until input arrives.
    }

    /// <inheritdoc/>
    protected override void OnReset()
    {
        _txDone = 0;
        _txStalled = false;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _output.SpaceAvailable -= _onDrained; // the output outlives the machine
        }
        base.Dispose(disposing);
    }

    /// <summary>The console drained (its writer thread): go on with the chain that did not fit.</summary>
    private void OnOutputDrained() => Notify(TransmitQueue);

    /// <summary>Takes transmit chains while the console has room; a chain that does not fit stays in the ring.</summary>
    private void Transmit()
    {
        Virtqueue q = Queues[TransmitQueue];
        bool used = false;
        _txStalled = false;
        while (true)
        {
            QueuePop pop = q.TryPop(_chain);
            if (pop == QueuePop.Error)
            {
                Fail($"queue {TransmitQueue}: {q.Error}");
                return;
            }
            if (pop == QueuePop.Empty)
            {
                if (q.ArmNotification())
                {
                    continue;
                }
                break;
            }
            if (!Send(_chain))
            {
                q.Unpop(); // the console is full: the guest waits for this chain, as for THRE on the 8250
                _txStalled = true;
                break;
            }
            _txDone = 0;
            if (!q.TryPushUsed(_chain.Head, 0))
            {
                Fail($"queue {TransmitQueue}: {q.Error}");
                return;
            }
            used = true;
        }
        if (used && q.NeedsInterrupt())
        {
            Interrupt.SignalUsedBuffers();
        }
    }

    /// <summary>Writes the chain from <see cref="_txDone"/> on; false (with <see cref="_txDone"/> advanced) if the console filled up first.</summary>
    private bool Send(DescriptorChain chain)
    {
        ulong skip = _txDone;
        foreach (ChainSegment s in chain.Readable)
        {
            if (skip >= s.Length)
            {
                skip -= s.Length;
                continue;
            }
            ulong address = s.Address + skip;
            uint remaining = s.Length - (uint)skip;
            skip = 0;
            while (remaining > 0)
            {
                int n = (int)Math.Min(remaining, (uint)_copy.Length);
                if (!Memory.TryRead(address, _copy.AsSpan(0, n)))
                {
                    return true; // checked when popped; the guest's memory map changed: drop the rest
                }
                int taken = _output.TryWrite(_copy.AsSpan(0, n));
                BytesTransmitted += taken;
                _txDone += (ulong)taken;
                if (taken < n)
                {
                    return false;
                }
                address += (ulong)n;
                remaining -= (uint)n;
            }
        }
        return true;
    }
}
