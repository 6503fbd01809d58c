using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Interop;

namespace VmmSharp.Devices.Virtio.Net;

/// <content>The receive path: frames from the TAP into the guest's posted buffers, one chain or (MRG_RXBUF) several.</content>
public sealed unsafe partial class VirtioNet
{
    /// <summary>Moves frames from the TAP into receive chains while both last. Call under <see cref="VirtioDevice.Sync"/>.</summary>
    private void Receive()
    {
        Virtqueue q = Queues[ReceiveQueue];
        bool used = false;
        while (true)
        {
            int chains = TakeReceiveChains(q, out int iovs, out ulong room, out ulong header, out bool failed);
            if (failed)
            {
                break;
            }
            if (chains == 0)
            {
                if (q.ArmNotification())
                {
                    continue;
                }
                break;
            }
            if (_mergeable && room < (ulong)_rxFrameLimit && chains < q.Size && chains < MaxIoVecs)
            {
                // Too little room for the largest frame the driver may get: reading now could cut a frame short. The
                // frames wait in the TAP (its queue is bounded) until the driver posts more.
                q.Unpop(chains);
                if (q.ArmNotification((ushort)chains))
                {
                    continue;
                }
                break;
            }
            nint got = Libc.Readv(_tap, _iov, iovs);
            if (got <= 0)
            {
                q.Unpop(chains); // no frame waiting: the buffers stay for the next one
                break;
            }
            if (!Deliver(q, chains, (ulong)got, header))
            {
                break;
            }
            used = true;
        }
        if (used && q.IsActive && q.NeedsInterrupt())
        {
            Interrupt.SignalUsedBuffers();
        }
    }

    /// <summary>
    /// Pops receive chains into <see cref="_iov"/> until they can hold <see cref="_rxFrameLimit"/> bytes (one chain
    /// without MRG_RXBUF), the ring is empty, or the iovecs are used up. Returns how many; <paramref name="failed"/> if
    /// the driver broke a rule (the device failed).
    /// </summary>
    private int TakeReceiveChains(Virtqueue q, out int iovs, out ulong room, out ulong header, out bool failed)
    {
        iovs = 0;
        room = 0;
        header = 0;
        failed = false;
        int chains = 0;
        while (chains < MaxIoVecs)
        {
            QueuePop pop = q.TryPop(_rxChain);
            if (pop == QueuePop.Error)
            {
                Fail($"queue {ReceiveQueue}: {q.Error}");
                failed = true;
                return 0;
            }
            if (pop == QueuePop.Empty)
            {
                break;
            }
            ReadOnlySpan<ChainSegment> writable = _rxChain.Writable;
            if (writable.Length == 0 || (chains == 0 && writable[0].Length < HeaderSize))
            {
                Fail($"receive buffer at descriptor {_rxChain.Head} has no room for the {HeaderSize}-byte header in its first part");
                failed = true;
                return 0;
            }
            int n = Gather(writable, forWrite: true, iovs);
            if (n < 0)
            {
                if (chains == 0)
                {
                    Fail($"receive buffer at descriptor {_rxChain.Head} has more than {MaxIoVecs} pieces");
                    failed = true;
                    return 0;
                }
                q.Unpop(); // no iovec left for this one: the frame goes into those before it
                break;
            }
            if (chains == 0)
            {
                header = writable[0].Address;
            }
            iovs = n;
            _rxHeads[chains] = _rxChain.Head;
            _rxRoom[chains] = (uint)Math.Min(_rxChain.WritableLength, uint.MaxValue);
            room += _rxRoom[chains];
            chains++;
            if (!_mergeable || room >= (ulong)_rxFrameLimit || chains == q.Size)
            {
                break;
            }
        }
        return chains;
    }

    /// <summary>Returns the chains a frame of <paramref name="length"/> bytes filled, their count in num_buffers; the rest go back.</summary>
    private bool Deliver(Virtqueue q, int chains, ulong length, ulong header)
    {
        int filled = 0;
        for (ulong left = length; left > 0 && filled < chains; filled++)
        {
            left -= Math.Min(left, _rxRoom[filled]);
        }
        Span<byte> count = [(byte)filled, (byte)(filled >> 8)];
        Memory.TryWrite(header + VirtioNetHeader.NumBuffersOffset, count);
        ulong remaining = length;
        for (int i = 0; i < filled; i++)
        {
            uint part = (uint)Math.Min(remaining, _rxRoom[i]);
            remaining -= part;
            if (!q.TryPushUsed(_rxHeads[i], part))
            {
                Fail($"queue {ReceiveQueue}: {q.Error}");
                return false;
            }
        }
        q.Unpop(chains - filled);
        FramesReceived++;
        return true;
    }
}
