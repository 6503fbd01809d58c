using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Interop;
using T = VmmSharp.Devices.Virtio.Block.BlockRequestType;

namespace VmmSharp.Devices.Virtio.Block;

/// <content>
/// The worker's batches: it takes up to <see cref="MaxBatch"/> requests at a time, and a run of reads (or writes) of
/// adjacent sectors, each a plain header + one data buffer + status chain, becomes one <c>preadv</c> (<c>pwritev</c>)
/// straight into (out of) guest memory, as a guest's sequential I/O arrives; every other request is served alone.
/// </content>
public sealed unsafe partial class VirtioBlock
{
    /// <summary>The most requests the worker takes from the queue before serving them.</summary>
    public const int MaxBatch = 32;

    private const int MaxIoVecs = 1024; // IOV_MAX

    private readonly DescriptorChain[] _batch = CreateBatch();
    private readonly uint[] _written = new uint[MaxBatch];
    private readonly ulong[] _sectors = new ulong[MaxBatch];
    private readonly Libc.IoVec* _iov = (Libc.IoVec*)NativeMemory.Alloc(MaxIoVecs, (nuint)sizeof(Libc.IoVec));

    private static DescriptorChain[] CreateBatch()
    {
        var batch = new DescriptorChain[MaxBatch];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = new DescriptorChain(QueueSize);
        }
        return batch;
    }

    /// <summary>Serves the queue in batches until it is empty, then interrupts if the driver wants it. Under <c>Sync</c>.</summary>
    private void DrainInBatches()
    {
        Virtqueue q = Queues[0];
        do
        {
            while (!NeedsReset)
            {
                int n = 0;
                while (n < MaxBatch)
                {
                    QueuePop pop = q.TryPop(_batch[n]);
                    if (pop == QueuePop.Empty)
                    {
                        break;
                    }
                    if (pop == QueuePop.Error)
                    {
                        Fail($"queue 0: {q.Error}");
                        return;
                    }
                    n++;
                }
                if (n == 0)
                {
                    break;
                }
                ServeBatch(n);
                for (int i = 0; i < n && !NeedsReset; i++)
                {
                    if (!q.TryPushUsed(_batch[i].Head, _written[i]))
                    {
                        Fail($"queue 0: {q.Error}");
                        return;
                    }
                }
            }
        }
        while (!NeedsReset && q.ArmNotification());
        if (q.IsActive && !NeedsReset && q.NeedsInterrupt())
        {
            Interrupt.SignalUsedBuffers();
        }
    }

    private void ServeBatch(int n)
    {
        int i = 0;
        while (i < n)
        {
            uint type = SimpleType(_batch[i], out _sectors[i]);
            int end = i + 1;
            if (type is T.In or T.Out)
            {
                while (end < n && SimpleType(_batch[end], out _sectors[end]) == type
                    && _sectors[end] == _sectors[end - 1] + (_batch[end - 1].Segments[1].Length / SectorSize))
                {
                    end++;
                }
            }
            if (end - i < 2 || !ServeRun(i, end, type == T.Out))
            {
                for (int k = i; k < end; k++)
                {
                    _written[k] = Handle(_batch[k]);
                }
            }
            i = end;
        }
    }

    /// <summary>
    /// T_IN or T_OUT for a chain of exactly a 16-byte header, one data buffer of whole sectors (device-writable for
    /// a read) and a 1-byte status, inside the disk and within SIZE_MAX; anything else (answered by
    /// <see cref="Handle"/>) gives <see cref="uint.MaxValue"/>.
    /// </summary>
    private uint SimpleType(DescriptorChain chain, out ulong sector)
    {
        sector = 0;
        ReadOnlySpan<ChainSegment> s = chain.Segments;
        if (s.Length != 3 || s[0].IsWriteOnly || s[0].Length != T.HeaderSize || !s[2].IsWriteOnly || s[2].Length != 1
            || s[1].Length % SectorSize != 0 || s[1].Length == 0 || s[1].Length > MaxSegmentSize)
        {
            return uint.MaxValue;
        }
        Span<byte> header = stackalloc byte[T.HeaderSize];
        if (!Memory.TryRead(s[0].Address, header))
        {
            return uint.MaxValue;
        }
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        bool ok = type switch
        {
            T.In => s[1].IsWriteOnly,
            T.Out => !s[1].IsWriteOnly && !ReadOnly,
            _ => false,
        };
        return ok && InRange(sector, s[1].Length) ? type : uint.MaxValue;
    }

    /// <summary>One preadv/pwritev for requests [start, end); false (nothing answered yet) if that cannot be done.</summary>
    private bool ServeRun(int start, int end, bool write)
    {
        int count = 0;
        ulong total = 0;
        for (int k = start; k < end; k++)
        {
            ChainSegment data = _batch[k].Segments[1];
            ulong address = data.Address, remaining = data.Length;
            while (Memory.NextSpan(ref address, ref remaining, forWrite: !write, out Span<byte> span))
            {
                if (count == MaxIoVecs)
                {
                    return false;
                }
                _iov[count].Base = Unsafe.AsPointer(ref MemoryMarshal.GetReference(span));
                _iov[count].Length = (nuint)span.Length;
                count++;
            }
            if (remaining != 0)
            {
                return false;
            }
            total += data.Length;
        }
        long offset = (long)(_sectors[start] * SectorSize);
        nint done = write ? Libc.Pwritev(_file, _iov, count, offset) : Libc.Preadv(_file, _iov, count, offset);
        if (done != (nint)total)
        {
            return false; // short or failed: serve each alone, which reports errors per request
        }
        for (int k = start; k < end; k++)
        {
            ChainSegment status = _batch[k].Segments[2];
            Completed++;
            if (!Memory.TryWrite(status.Address, [T.StatusOk]))
            {
                Fail($"status byte at 0x{status.Address:x} is not writable");
                return true;
            }
            _written[k] = write ? 1 : _batch[k].Segments[1].Length + 1;
        }
        return true;
    }
}
