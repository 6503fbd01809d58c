using Microsoft.Win32.SafeHandles;

namespace VmmSharp.Devices.Consoles;

/// <summary>
/// Where console devices put the guest's output: a bounded buffer that a writer thread of its own drains into a
/// <see cref="Stream"/> (the process's standard output, a file, a pipe). A device on a vCPU thread never waits for the
/// sink: <see cref="Write"/> takes what fits and returns at once.
/// </summary>
/// <remarks>
/// <para>When the sink is slower than the guest, the buffer fills. A device that offers back-pressure checks
/// <see cref="FreeSpace"/> (the 8250 keeps LSR's THRE clear) or uses <see cref="TryWrite"/>, and waits for
/// <see cref="SpaceAvailable"/>; bytes given to <see cref="Write"/> beyond the free space are dropped and counted in
/// <see cref="DroppedBytes"/>. Memory never grows past
/// <see cref="Capacity"/>.</para>
/// <para>The output outlives machines (one serves every boot of a rebooting guest) and is shared by the console
/// devices that write to it. It does not dispose a sink it was given.</para>
/// <para>Threading: <see cref="Write"/>, <see cref="FreeSpace"/> and the counters may be called from any thread
/// (typically vCPU threads); <see cref="Flush"/> and <see cref="Dispose"/> from any thread but the writer's.</para>
/// </remarks>
public sealed class ConsoleOutput : IDisposable
{
    /// <summary>The default buffer size: 64 KiB, a screenful of boot log many times over.</summary>
    public const int DefaultCapacity = 64 << 10;

    /// <summary>
    /// <see cref="SpaceAvailable"/> is raised once the buffer has at least this much free space again after a
    /// <see cref="Write"/> left it with less. A device's "ready" threshold must not exceed it.
    /// </summary>
    public const int SpaceThreshold = 256;

    /// <summary>How long <see cref="Dispose"/> lets the writer drain the buffer before giving up on the sink.</summary>
    public static readonly TimeSpan DisposeDrainTimeout = TimeSpan.FromSeconds(1);

    private readonly Lock _lock = new();
    private readonly Stream _sink;
    private readonly bool _ownsSink;
    private readonly byte[] _ring;
    private readonly ManualResetEventSlim _dataReady = new(false);
    private readonly ManualResetEventSlim _empty = new(true);
    private readonly Thread _writer;
    private int _head;
    private int _count;
    private long _dropped;
    private long _written;
    private bool _spaceWanted;
    private bool _closed;
    private bool _broken;

    /// <summary>Creates the buffer and starts its writer thread.</summary>
    /// <param name="sink">Receives the guest's output on the writer thread; it may block, the guest does not wait for it.</param>
    /// <param name="capacity">The buffer size in bytes: <see cref="SpaceThreshold"/> to 64 MiB.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is out of range.</exception>
    public ConsoleOutput(Stream sink, int capacity = DefaultCapacity)
        : this(sink, capacity, ownsSink: false)
    {
    }

    private ConsoleOutput(Stream sink, int capacity, bool ownsSink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, SpaceThreshold);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, 64 << 20);
        _sink = sink;
        _ownsSink = ownsSink;
        _ring = new byte[capacity];
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "console output" };
        _writer.Start();
    }

    /// <summary>
    /// An output to the process's standard output (file descriptor 1), for a VMM whose stdout is the guest's console.
    /// </summary>
    /// <remarks>
    /// It writes fd 1 through a plain <see cref="FileStream"/>, not <see cref="Console.OpenStandardOutput()"/>: .NET's
    /// console streams share one lock, so a write blocked on a stalled stdout would also block every
    /// <see cref="Console.Error"/> write of the process. Where fd 1 is closed, output is discarded.
    /// </remarks>
    /// <param name="capacity">The buffer size in bytes.</param>
    public static ConsoleOutput StandardOutput(int capacity = DefaultCapacity)
    {
        Stream sink;
        try
        {
            sink = new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            sink = Stream.Null;
        }
        return new ConsoleOutput(sink, capacity, ownsSink: true);
    }

    /// <summary>
    /// Raised on the writer thread when free space reaches <see cref="SpaceThreshold"/> after a <see cref="Write"/> left
    /// less: a device that held the guest back (THRE clear) tells it to go on. Handlers must be short and must not throw.
    /// </summary>
    public event Action? SpaceAvailable;

    /// <summary>The buffer size in bytes.</summary>
    public int Capacity => _ring.Length;

    /// <summary>How many bytes <see cref="Write"/> would take now.</summary>
    public int FreeSpace => _ring.Length - Volatile.Read(ref _count);

    /// <summary>Bytes lost: written into a full buffer, after <see cref="Dispose"/>, or after the sink failed.</summary>
    public long DroppedBytes => Interlocked.Read(ref _dropped);

    /// <summary>Bytes handed to the sink so far.</summary>
    public long WrittenBytes => Interlocked.Read(ref _written);

    /// <summary>Whether the sink failed (a closed pipe, say); from then on output is dropped.</summary>
    public bool SinkFailed => Volatile.Read(ref _broken);

    /// <summary>
    /// Queues <paramref name="data"/> for the sink, as much as fits; the rest is dropped and counted. Never blocks and
    /// never throws (it is called on behalf of the guest), and allocates nothing. After <see cref="Dispose"/> everything is dropped.
    /// </summary>
    /// <param name="data">The guest's bytes.</param>
    /// <returns>How many bytes were taken.</returns>
    public int Write(ReadOnlySpan<byte> data) => Enqueue(data, dropRest: true);

    /// <summary>
    /// Queues as much of <paramref name="data"/> as fits and leaves the rest to the caller (a device that keeps the
    /// guest's buffer until there is room, as a virtio queue does). Never blocks, never throws, allocates nothing.
    /// </summary>
    /// <param name="data">The guest's bytes.</param>
    /// <returns>How many bytes were taken; after <see cref="Dispose"/> or a sink failure all of them, which are dropped and counted.</returns>
    public int TryWrite(ReadOnlySpan<byte> data) => Enqueue(data, dropRest: false);

    private int Enqueue(ReadOnlySpan<byte> data, bool dropRest)
    {
        int taken;
        bool wake;
        lock (_lock)
        {
            if (_closed || _broken)
            {
                _dropped += data.Length;
                return dropRest ? 0 : data.Length;
            }
            taken = Math.Min(data.Length, _ring.Length - _count);
            int tail = (_head + _count) % _ring.Length;
            int first = Math.Min(taken, _ring.Length - tail);
            data[..first].CopyTo(_ring.AsSpan(tail));
            data[first..taken].CopyTo(_ring);
            wake = _count == 0 && taken > 0;
            Volatile.Write(ref _count, _count + taken);
            if (dropRest)
            {
                _dropped += data.Length - taken;
            }
            if (_ring.Length - _count < SpaceThreshold || taken < data.Length)
            {
                _spaceWanted = true;
            }
            if (wake)
            {
                _empty.Reset();
            }
        }
        if (wake)
        {
            _dataReady.Set();
        }
        return taken;
    }

    /// <summary>Waits until everything written so far has reached the sink, or <paramref name="timeout"/> passes.</summary>
    /// <returns>Whether the buffer drained (false: the sink is too slow or blocked).</returns>
    public bool Flush(TimeSpan timeout)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _closed), this);
        return _empty.Wait(timeout);
    }

    /// <summary>
    /// Lets the writer drain what is buffered for up to <see cref="DisposeDrainTimeout"/>, then stops it. Returns within
    /// that bound even if the sink blocks forever (the writer thread is then left to end when the sink returns).
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _closed = true;
        }
        _dataReady.Set();
        if (_writer.Join(DisposeDrainTimeout))
        {
            // Only once the writer is gone: a writer still blocked in the sink will touch these again.
            _dataReady.Dispose();
            _empty.Dispose();
            if (_ownsSink)
            {
                _sink.Dispose();
            }
        }
    }

    private void WriteLoop()
    {
        while (true)
        {
            int start, length;
            lock (_lock)
            {
                if (_count == 0)
                {
                    if (_closed)
                    {
                        return;
                    }
                    _dataReady.Reset();
                    length = 0;
                    start = 0;
                }
                else
                {
                    start = _head;
                    length = Math.Min(_count, _ring.Length - _head);
                }
            }
            if (length == 0)
            {
                _dataReady.Wait();
                continue;
            }

            // Outside the lock: producers only fill free space, never this stretch, so it holds still.
            bool ok = WriteToSink(_ring.AsSpan(start, length), flush: length == Volatile.Read(ref _count));
            bool notify;
            lock (_lock)
            {
                _head = (_head + length) % _ring.Length;
                Volatile.Write(ref _count, _count - length);
                if (ok)
                {
                    _written += length;
                }
                else
                {
                    _dropped += length;
                }
                notify = _spaceWanted && _ring.Length - _count >= SpaceThreshold;
                if (notify)
                {
                    _spaceWanted = false;
                }
                if (_count == 0)
                {
                    _empty.Set();
                }
            }
            if (notify)
            {
                SpaceAvailable?.Invoke();
            }
        }
    }

    private bool WriteToSink(ReadOnlySpan<byte> chunk, bool flush)
    {
        if (Volatile.Read(ref _broken))
        {
            return false;
        }
        try
        {
            _sink.Write(chunk);
            if (flush)
            {
                _sink.Flush();
            }
            return true;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or UnauthorizedAccessException)
        {
            // The console went away (a closed pipe, say): the guest keeps running and its output is dropped.
            Volatile.Write(ref _broken, true);
            return false;
        }
    }
}
