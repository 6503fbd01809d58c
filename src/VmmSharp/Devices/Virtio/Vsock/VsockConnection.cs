using VmmSharp.Interop;

namespace VmmSharp.Devices.Virtio.Vsock;

/// <summary>Where a vsock connection is in its life.</summary>
internal enum VsockConnectionState
{
    /// <summary>A host peer connected to the device's socket and has not yet sent its whole <c>CONNECT port\n</c> line.</summary>
    AwaitingConnectLine,

    /// <summary>Host-initiated: REQUEST sent (or about to be), waiting for the guest's RESPONSE or RST.</summary>
    Connecting,

    /// <summary>Both sides open; data flows as credit allows.</summary>
    Established,
}

/// <summary>Control packets a connection owes the guest, sent as receive buffers allow.</summary>
[Flags]
internal enum VsockPending
{
    None = 0,
    Request = 1,
    Response = 2,
    Shutdown = 4,
    CreditUpdate = 8,
}

/// <summary>
/// One stream between a port of the guest and a Unix socket of the host: its ports, its host socket, what it owes
/// the guest, and the credit accounting of virtio 1.2 §5.10.6.3 both ways. Touched only on the device's thread,
/// under its lock.
/// </summary>
/// <remarks>
/// Guest to host, bytes the host socket would not take at once wait in <see cref="Pending"/>'s buffer, which never
/// holds more than the <c>buf_alloc</c> the device advertises: a guest that sends past its credit loses the
/// connection (RST). Host to guest, the device reads from the host socket only what the guest's credit
/// (<see cref="PeerCredit"/>) and its receive buffers allow, so the rest stays in the host socket.
/// </remarks>
internal sealed class VsockConnection(ulong token, SafeFileDescriptor socket, VsockConnectionState state, long since)
{
    private const int MaxConnectLine = 32;

    private byte[]? _buffer;
    private int _head;
    private byte[]? _line;
    private int _lineLength;

    /// <summary>The host socket's epoll token.</summary>
    public ulong Token { get; } = token;

    /// <summary>The host-side socket.</summary>
    public SafeFileDescriptor Socket { get; } = socket;

    public VsockConnectionState State { get; set; } = state;

    /// <summary>When the connection entered a state that waits on the other side (for reaping at the connection bound).</summary>
    public long Since { get; set; } = since;

    /// <summary>The host side's port (the guest's dst_port).</summary>
    public uint LocalPort { get; set; }

    /// <summary>The guest side's port (the guest's src_port).</summary>
    public uint PeerPort { get; set; }

    public VsockPending Pending { get; set; }

    /// <summary>Whether the connection is in the device's send queue.</summary>
    public bool Queued { get; set; }

    /// <summary>Whether the device has dropped it (it may still sit in the send queue, to be skipped).</summary>
    public bool Closed { get; set; }

    /// <summary>The host socket may have bytes (or an EOF) to read: set by epoll's edge, cleared when a read would block.</summary>
    public bool HostReadable { get; set; }

    /// <summary>The host socket may take bytes: set by epoll's edge, cleared when a write would block.</summary>
    public bool HostWritable { get; set; } = true;

    /// <summary>The host peer closed its end for writing (a read returned 0).</summary>
    public bool HostEof { get; set; }

    /// <summary>The host peer closed the socket altogether (EPOLLHUP).</summary>
    public bool HostHangUp { get; set; }

    /// <summary>The SHUTDOWN flags already sent to the guest.</summary>
    public uint ShutdownSent { get; set; }

    /// <summary>The guest will send no more (SHUTDOWN with SEND): half-close the host socket once the buffer is out.</summary>
    public bool GuestDoneSending { get; set; }

    /// <summary>The guest will receive no more (SHUTDOWN with RECEIVE): stop reading the host socket.</summary>
    public bool GuestDoneReceiving { get; set; }

    /// <summary>Whether the host socket was half-closed for the guest's SHUTDOWN.</summary>
    public bool HostShutDown { get; set; }

    /// <summary>The guest's buf_alloc, from its latest header.</summary>
    public uint PeerBufAlloc { get; set; }

    /// <summary>The guest's fwd_cnt, from its latest header.</summary>
    public uint PeerFwdCnt { get; set; }

    /// <summary>Payload bytes sent to the guest (wrapping, as the spec's counters do).</summary>
    public uint RxCnt { get; set; }

    /// <summary>Payload bytes from the guest that reached the host socket: the fwd_cnt the device reports.</summary>
    public uint FwdCnt { get; set; }

    /// <summary>The fwd_cnt last told to the guest (every header carries it).</summary>
    public uint FwdCntSent { get; set; }

    /// <summary>How many more payload bytes the guest can take: its buf_alloc less what is in flight; never negative.</summary>
    public uint PeerCredit
    {
        get
        {
            uint inFlight = RxCnt - PeerFwdCnt;
            return inFlight >= PeerBufAlloc ? 0 : PeerBufAlloc - inFlight;
        }
    }

    /// <summary>Guest bytes waiting for the host socket.</summary>
    public int Buffered { get; private set; }

    /// <summary>Whether the connection has something for the guest that the guest can take now.</summary>
    public bool HasWorkForGuest => !Closed && (Pending != VsockPending.None || CanReadHost);

    /// <summary>Whether host bytes may be read for the guest now.</summary>
    public bool CanReadHost => State == VsockConnectionState.Established && HostReadable && !HostEof && !GuestDoneReceiving && PeerCredit > 0;

    /// <summary>Appends guest bytes that the host socket did not take; false if they do not fit in <paramref name="capacity"/>.</summary>
    public bool TryBuffer(int length, int capacity, out Span<byte> first, out Span<byte> second)
    {
        first = second = default;
        if (length > capacity - Buffered)
        {
            return false;
        }
        _buffer ??= new byte[capacity]; // at most once per connection, bounded by the advertised buf_alloc
        int tail = (_head + Buffered) % _buffer.Length;
        int n = Math.Min(length, _buffer.Length - tail);
        first = _buffer.AsSpan(tail, n);
        second = _buffer.AsSpan(0, length - n);
        Buffered += length;
        return true;
    }

    /// <summary>The oldest buffered bytes that lie contiguously.</summary>
    public ReadOnlySpan<byte> BufferedHead()
        => _buffer is null ? default : _buffer.AsSpan(_head, Math.Min(Buffered, _buffer.Length - _head));

    /// <summary>Drops <paramref name="n"/> bytes from the front of the buffer (they reached the host socket).</summary>
    public void Consume(int n)
    {
        _head = (_head + n) % _buffer!.Length;
        Buffered -= n;
        if (Buffered == 0)
        {
            _head = 0;
        }
    }

    /// <summary>
    /// Adds a byte of the host's <c>CONNECT port\n</c> line. Returns true with the port once the line is complete and
    /// valid; false while it is incomplete; sets <paramref name="invalid"/> if it cannot be a valid line.
    /// </summary>
    public bool TryAddConnectLineByte(byte b, out uint port, out bool invalid)
    {
        port = 0;
        invalid = false;
        _line ??= new byte[MaxConnectLine];
        if (b != (byte)'\n')
        {
            if (_lineLength == _line.Length)
            {
                invalid = true;
                return false;
            }
            _line[_lineLength++] = b;
            return false;
        }
        ReadOnlySpan<byte> line = _line.AsSpan(0, _lineLength);
        ReadOnlySpan<byte> prefix = "CONNECT "u8;
        if (!line.StartsWith(prefix) || !TryParsePort(line[prefix.Length..], out port))
        {
            invalid = true;
            return false;
        }
        _line = null;
        return true;
    }

    private static bool TryParsePort(ReadOnlySpan<byte> digits, out uint port)
    {
        port = 0;
        if (digits.Length is 0 or > 10)
        {
            return false;
        }
        ulong value = 0;
        foreach (byte d in digits)
        {
            if (d is < (byte)'0' or > (byte)'9')
            {
                return false;
            }
            value = (value * 10) + (uint)(d - '0');
        }
        if (value > uint.MaxValue)
        {
            return false;
        }
        port = (uint)value;
        return true;
    }
}
