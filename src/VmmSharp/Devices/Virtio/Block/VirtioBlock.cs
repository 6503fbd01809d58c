using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Interop;
using VmmSharp.State;
using T = VmmSharp.Devices.Virtio.Block.BlockRequestType;

namespace VmmSharp.Devices.Virtio.Block;

/// <summary>
/// virtio-blk (virtio 1.2 §5.2) over a raw image file: read, write, FLUSH (<c>fdatasync</c>), GET_ID, DISCARD and
/// WRITE_ZEROES (hole punching), read-only disks, SEG_MAX and SIZE_MAX.
/// </summary>
/// <remarks>
/// <para>I/O runs on a worker thread of the disk's own, never on a vCPU thread or the event loop: a notification only
/// wakes the worker, which takes the requests, reads and writes the file directly into and out of guest memory
/// (<c>pread</c>/<c>pwrite</c> through <see cref="RandomAccess"/>, no copy, no allocation per request), and completes
/// them. A thread per disk rather than io_uring: it needs no interop beyond what .NET has, keeps a slow disk from
/// holding anything but its own queue, and leaves room for io_uring later behind the same device.</para>
/// <para>Pausing (<see cref="VirtioDevice.Pause"/>) waits for the worker to finish the requests it took: it drains under
/// <see cref="VirtioDevice.Sync"/>, so a paused disk has nothing in flight and its ring state is a consistent snapshot;
/// notifications that arrive while paused are served on <see cref="VirtioDevice.Resume"/>.</para>
/// <para>A request the device can answer (a header of the wrong size, a sector past the end, a write to a read-only
/// disk, a buffer past SIZE_MAX) gets an error status; one it cannot answer (no status byte) fails the device.</para>
/// </remarks>
public sealed unsafe partial class VirtioBlock : VirtioDevice
{
    /// <summary>The request queue's size.</summary>
    public const ushort QueueSize = 256;

    /// <summary>The most data buffers per request (seg_max): the chain also holds the header and the status.</summary>
    public const uint MaxSegments = QueueSize - 2;

    /// <summary>The largest buffer (size_max).</summary>
    public const uint MaxSegmentSize = 1 << 20;

    /// <summary>The sector size the protocol counts in.</summary>
    public const int SectorSize = 512;

    private const int ConfigLength = 60;
    private const uint MaxRangesPerRequest = 16;

    private readonly SafeFileHandle _file;
    private readonly byte[] _config = new byte[ConfigLength];
    private readonly byte[] _id = new byte[T.IdSize];
    private readonly Thread _worker;
    private readonly AutoResetEvent _wake = new(false);
    private readonly ILogger? _logger;
    private volatile bool _stopping;
    private volatile bool _notified;
    private long _workerAllocated;

    /// <summary>Opens <paramref name="path"/> as the disk.</summary>
    /// <param name="path">A raw image; its size is rounded down to whole sectors.</param>
    /// <param name="readOnly">Open it read-only and offer VIRTIO_BLK_F_RO.</param>
    /// <param name="serial">GET_ID's answer (at most 20 ASCII bytes); null for none.</param>
    /// <param name="logger">Receives guest errors and I/O errors; null for none.</param>
    /// <exception cref="IOException">The file cannot be opened; the message names it.</exception>
    /// <exception cref="ArgumentException">The serial is longer than 20 bytes.</exception>
    public VirtioBlock(string path, bool readOnly = false, string? serial = null, ILogger? logger = null)
        : base(VirtioDeviceType.Block, Features(readOnly), [QueueSize], logger)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (serial is not null && System.Text.Encoding.ASCII.GetByteCount(serial) > T.IdSize)
        {
            throw new ArgumentException($"disk serial '{serial}' is longer than {T.IdSize} bytes", nameof(serial));
        }
        try
        {
            _file = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"disk image '{path}': {e.Message}", e);
        }
        Path = path;
        ReadOnly = readOnly;
        _logger = logger;
        Name = $"virtio-blk ({path})";
        Capacity = (ulong)RandomAccess.GetLength(_file) / SectorSize;
        if (serial is not null)
        {
            System.Text.Encoding.ASCII.GetBytes(serial, _id);
        }
        Span<byte> c = _config;
        BinaryPrimitives.WriteUInt64LittleEndian(c, Capacity);
        BinaryPrimitives.WriteUInt32LittleEndian(c[8..], MaxSegmentSize);
        BinaryPrimitives.WriteUInt32LittleEndian(c[12..], MaxSegments);
        // blk_size: not offered (VIRTIO_BLK_F_BLK_SIZE), since Linux takes it as the logical block size and a 4 KiB one
        // makes a file system with 1 KiB blocks unmountable; the field says what the disk is addressed in all the same.
        BinaryPrimitives.WriteUInt32LittleEndian(c[20..], SectorSize);                 // blk_size
        BinaryPrimitives.WriteUInt32LittleEndian(c[36..], uint.MaxValue / SectorSize); // max_discard_sectors
        BinaryPrimitives.WriteUInt32LittleEndian(c[40..], MaxRangesPerRequest);        // max_discard_seg
        BinaryPrimitives.WriteUInt32LittleEndian(c[44..], 8);                          // discard_sector_alignment
        BinaryPrimitives.WriteUInt32LittleEndian(c[48..], uint.MaxValue / SectorSize); // max_write_zeroes_sectors
        BinaryPrimitives.WriteUInt32LittleEndian(c[52..], MaxRangesPerRequest);        // max_write_zeroes_seg
        c[56] = 1;                                                                     // write_zeroes_may_unmap
        _worker = new Thread(Work, maxStackSize: 256 * 1024) { Name = $"vmm-blk {System.IO.Path.GetFileName(path)}", IsBackground = true };
        _worker.Start();
    }

    /// <summary>The image file.</summary>
    public string Path { get; }

    /// <summary>Whether the disk is read-only.</summary>
    public bool ReadOnly { get; }

    /// <summary>The disk's size in 512-byte sectors.</summary>
    public ulong Capacity { get; }

    /// <summary>
    /// Managed bytes the disk's worker thread has allocated since it started, as of its last batch of requests
    /// (<see cref="GC.GetAllocatedBytesForCurrentThread"/> on that thread): a diagnostic for the rule that serving a
    /// request allocates nothing.
    /// </summary>
    public long WorkerAllocatedBytes => Volatile.Read(ref _workerAllocated);

    /// <summary>How many requests were completed (with any status).</summary>
    public long Completed { get; private set; }

    /// <inheritdoc/>
    public override int ConfigSize => ConfigLength;

    /// <inheritdoc/>
    protected override void ReadConfigSpace(uint offset, Span<byte> data) => _config.AsSpan((int)offset, data.Length).CopyTo(data);

    /// <inheritdoc/>
    protected override void OnNotify(int queue)
    {
        // Hand the work to the disk's thread; the caller (the event loop) returns at once.
        _notified = true;
        _wake.Set();
    }

    /// <inheritdoc/>
    protected override void OnResume()
    {
        if (_notified)
        {
            _wake.Set(); // a notification that came while paused
        }
    }

    /// <inheritdoc/>
    /// <remarks>The disk's size and read-only flag, so a snapshot is not restored onto a different disk.</remarks>
    protected override void SaveDeviceState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteUInt64(Capacity);
        writer.WriteBool(ReadOnly);
    }

    /// <inheritdoc/>
    protected override void RestoreDeviceState(ref StateReader reader, ushort version)
    {
        ulong capacity = reader.ReadUInt64("capacity");
        if (capacity != Capacity)
        {
            throw reader.Invalid("capacity", capacity, $"sectors differs from the {Capacity} of '{Path}'");
        }
        bool readOnly = reader.ReadBool("read-only");
        if (readOnly != ReadOnly)
        {
            throw reader.Invalid("read-only", readOnly, $"differs from how '{Path}' is attached");
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_stopping)
        {
            _stopping = true;
            _wake.Set();
            if (_worker.Join(TimeSpan.FromSeconds(5)))
            {
                _wake.Dispose();
                _file.Dispose();
                NativeMemory.Free(_iov);
            }
        }
        base.Dispose(disposing);
    }

    private static ulong Features(bool readOnly)
        => BlockFeatures.SizeMax | BlockFeatures.SegMax | BlockFeatures.Flush
            | (readOnly ? BlockFeatures.ReadOnly : BlockFeatures.Discard | BlockFeatures.WriteZeroes);

    private void Work()
    {
        while (!_stopping)
        {
            _wake.WaitOne();
            if (_stopping)
            {
                return;
            }
            while (_notified)
            {
                _notified = false;
                lock (Sync)
                {
                    if (IsPaused)
                    {
                        // Held until Resume, which wakes this thread again; nothing was taken from the ring.
                        _notified = true;
                        break;
                    }
                    if (IsActive && !NeedsReset && Queues[0].IsActive)
                    {
                        DrainInBatches();
                    }
                }
                Volatile.Write(ref _workerAllocated, GC.GetAllocatedBytesForCurrentThread());
            }
        }
    }

    /// <summary>Serves one request; returns the bytes written into the chain (data and status).</summary>
    private uint Handle(DescriptorChain chain)
    {
        Completed++;
        // The status byte is the last byte of the last writable buffer.
        ReadOnlySpan<ChainSegment> writable = chain.Writable;
        if (writable.IsEmpty || writable[^1].Length == 0)
        {
            Fail($"request at descriptor {chain.Head} has no status byte to answer in");
            return 0;
        }
        ChainSegment last = writable[^1];
        ulong statusAddress = last.Address + last.Length - 1;
        byte status = Serve(chain, out uint dataWritten);
        if (!Memory.TryWrite(statusAddress, [status]))
        {
            Fail($"status byte at 0x{statusAddress:x} is not writable");
            return 0;
        }
        return dataWritten + 1;
    }

    private byte Serve(DescriptorChain chain, out uint dataWritten)
    {
        dataWritten = 0;
        Span<byte> header = stackalloc byte[T.HeaderSize];
        if (chain.ReadableLength < T.HeaderSize || !Gather(chain.Readable, 0, header))
        {
            return T.StatusIoError;
        }
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        if ((uint)chain.Count - 2 > MaxSegments && type is T.In or T.Out)
        {
            return T.StatusIoError;
        }
        foreach (ChainSegment s in chain.Segments)
        {
            if (s.Length > MaxSegmentSize)
            {
                return T.StatusIoError;
            }
        }
        try
        {
            return type switch
            {
                T.In => Read(chain, sector, out dataWritten),
                T.Out => Write(chain, sector),
                T.Flush => Flush(),
                T.GetId => GetId(chain, out dataWritten),
                T.Discard or T.WriteZeroes => ReadOnly ? T.StatusIoError : Ranges(chain, type),
                _ => T.StatusUnsupported,
            };
        }
        catch (IOException e)
        {
            if (_logger is not null)
            {
                LogIoError(_logger, Name, e.Message);
            }
            return T.StatusIoError;
        }
    }

    private byte Read(DescriptorChain chain, ulong sector, out uint dataWritten)
    {
        dataWritten = 0;
        ulong length = chain.WritableLength - 1;
        if (!InRange(sector, length) || length % SectorSize != 0)
        {
            return T.StatusIoError;
        }
        long offset = (long)(sector * SectorSize);
        ulong left = length;
        foreach (ChainSegment s in chain.Writable)
        {
            ulong address = s.Address;
            ulong remaining = Math.Min(s.Length, left);
            while (Memory.NextSpan(ref address, ref remaining, forWrite: true, out Span<byte> span))
            {
                int n = RandomAccess.Read(_file, span, offset);
                if (n < span.Length)
                {
                    span[n..].Clear(); // past the end of a file shorter than its sectors: zeros
                }
                offset += span.Length;
                left -= (ulong)span.Length;
                dataWritten += (uint)span.Length;
            }
        }
        return left == 0 ? T.StatusOk : T.StatusIoError;
    }

    private byte Write(DescriptorChain chain, ulong sector)
    {
        if (ReadOnly)
        {
            return T.StatusIoError;
        }
        ulong length = chain.ReadableLength - T.HeaderSize;
        if (!InRange(sector, length) || length % SectorSize != 0)
        {
            return T.StatusIoError;
        }
        long offset = (long)(sector * SectorSize);
        ulong skip = T.HeaderSize;
        foreach (ChainSegment s in chain.Readable)
        {
            ulong address = s.Address, remaining = s.Length;
            if (skip >= remaining)
            {
                skip -= remaining;
                continue;
            }
            address += skip;
            remaining -= skip;
            skip = 0;
            while (Memory.NextSpan(ref address, ref remaining, forWrite: false, out Span<byte> span))
            {
                RandomAccess.Write(_file, span, offset);
                offset += span.Length;
            }
        }
        return T.StatusOk;
    }

    private byte Flush()
    {
        if (ReadOnly)
        {
            return T.StatusOk;
        }
        return Libc.FdataSync(_file) == 0 ? T.StatusOk : T.StatusIoError;
    }

    private byte GetId(DescriptorChain chain, out uint dataWritten)
    {
        dataWritten = 0;
        ulong room = Math.Min(chain.WritableLength - 1, T.IdSize);
        ChainSegment first = chain.Writable[0];
        if (first.Length < room)
        {
            return T.StatusIoError;
        }
        if (!Memory.TryWrite(first.Address, _id.AsSpan(0, (int)room)))
        {
            return T.StatusIoError;
        }
        dataWritten = (uint)room;
        return T.StatusOk;
    }

    private byte Ranges(DescriptorChain chain, uint type)
    {
        ulong length = chain.ReadableLength - T.HeaderSize;
        if (length == 0 || length % T.RangeSize != 0 || length / T.RangeSize > MaxRangesPerRequest)
        {
            return T.StatusIoError;
        }
        Span<byte> all = stackalloc byte[(int)(T.HeaderSize + length)];
        if (!Gather(chain.Readable, 0, all))
        {
            return T.StatusIoError;
        }
        for (int i = T.HeaderSize; i < all.Length; i += T.RangeSize)
        {
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(all[i..]);
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(all[(i + 8)..]);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(all[(i + 12)..]);
            if ((flags & ~T.RangeFlagUnmap) != 0 || (type == T.Discard && flags != 0))
            {
                return T.StatusUnsupported;
            }
            if (!InRange(sector, (ulong)count * SectorSize))
            {
                return T.StatusIoError;
            }
            // A punched hole reads as zeros, so it serves both DISCARD and WRITE_ZEROES.
            if (Libc.Fallocate(_file, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, (long)(sector * SectorSize), (long)count * SectorSize) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (type == T.Discard)
                {
                    continue; // discarding is advice; a file system that cannot punch ignores it
                }
                if (_logger is not null)
                {
                    LogIoError(_logger, Name, $"fallocate(PUNCH_HOLE): {Libc.ErrorText(errno)}");
                }
                return T.StatusIoError;
            }
        }
        return T.StatusOk;
    }

    private bool InRange(ulong sector, ulong length)
        => sector <= Capacity && (length + SectorSize - 1) / SectorSize <= Capacity - sector;

    /// <summary>Copies the first <c>destination.Length</c> readable bytes after <paramref name="skip"/> of the chain.</summary>
    private bool Gather(ReadOnlySpan<ChainSegment> readable, ulong skip, Span<byte> destination)
    {
        int done = 0;
        foreach (ChainSegment s in readable)
        {
            if (done == destination.Length)
            {
                break;
            }
            if (skip >= s.Length)
            {
                skip -= s.Length;
                continue;
            }
            int n = (int)Math.Min(s.Length - skip, (ulong)(destination.Length - done));
            if (!Memory.TryRead(s.Address + skip, destination.Slice(done, n)))
            {
                return false;
            }
            skip = 0;
            done += n;
        }
        return done == destination.Length;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Device}: I/O error: {Error}")]
    private static partial void LogIoError(ILogger logger, string device, string error);
}
