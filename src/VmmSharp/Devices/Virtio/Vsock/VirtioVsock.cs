using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Interop;

namespace VmmSharp.Devices.Virtio.Vsock;

/// <summary>
/// virtio-vsock (virtio 1.2 §5.10, stream sockets only) whose host side is Firecracker's hybrid vsock: Unix sockets
/// instead of a host vsock module. A host program connects to <see cref="SocketPath"/> and writes
/// <c>CONNECT port\n</c>; once the guest's listener on that port accepts, it reads <c>OK hostport\n</c> and the bytes
/// flow. A guest connection to host port P (cid 2) goes to the Unix socket <c>SocketPath_P</c>.
/// </summary>
/// <remarks>
/// <para>Queues: receive 0 (device to guest), transmit 1, event 2 (a TRANSPORT_RESET after a snapshot restore).
/// Configuration space: <c>guest_cid</c> (le64).</para>
/// <para>Every host socket is non-blocking and watched by the device's own epoll instance (<see cref="Backend"/>),
/// which the machine's event loop watches in turn; all socket I/O runs there, under the device's lock, never on a
/// vCPU thread. A slow host peer only stops its own connection: what it does not read waits in that connection's
/// buffer, bounded by the <c>buf_alloc</c> the device advertises (<see cref="BufferSize"/>), and the guest's credit
/// stops it sending more. Host to guest, the device reads from a host socket only as much as the guest's credit
/// and its posted receive buffers allow.</para>
/// <para>The guest is hostile: a packet whose header is wrong (src_cid not the guest's, dst_cid not 2, a type other
/// than STREAM, an unknown op, a len past its buffers or past 64 KiB, a control packet with payload) is counted,
/// logged once and answered with RST; data past the credit the device gave resets the connection. Connections are
/// bounded (<see cref="MaxConnections"/>), and so is the backlog of RSTs owed to the guest (a REQUEST flood
/// while the guest posts no receive buffers loses RSTs, counted in <see cref="ResetsDropped"/>). A receive buffer too
/// small for a header, or a broken ring, sets DEVICE_NEEDS_RESET.</para>
/// </remarks>
public sealed unsafe partial class VirtioVsock : VirtioDevice
{
    /// <summary>The receive and transmit queues' size.</summary>
    public const ushort QueueSize = 256;

    /// <summary>The event queue's size.</summary>
    public const ushort EventQueueSize = 16;

    /// <summary>The host's context id (VMADDR_CID_HOST).</summary>
    public const ulong HostCid = 2;

    /// <summary>The buf_alloc the device advertises per connection: the most it buffers for a slow host peer.</summary>
    public const uint BufferSize = 64 * 1024;

    /// <summary>The largest payload of one packet, either way.</summary>
    public const uint MaxPayload = 64 * 1024;

    /// <summary>The default bound on connections (host- and guest-initiated together).</summary>
    public const int DefaultMaxConnections = 128;

    /// <summary>The size of the bounded backlog of RSTs waiting for receive buffers.</summary>
    public const int ResetBacklog = 64;

    /// <summary>How long a connection may wait on the other side (a CONNECT line, a RESPONSE, an RST after SHUTDOWN) before it may be dropped for a new one at the bound.</summary>
    public static readonly TimeSpan ReapAfter = TimeSpan.FromSeconds(2);

    private const int RxQueue = 0, TxQueue = 1, EventQueue = 2;
    private const uint EventTransportReset = 0;
    private const int MaxIoVecs = QueueSize;

    private readonly ILogger? _logger;
    private readonly DescriptorChain _txChain = new(QueueSize);
    private readonly DescriptorChain _rxChain = new(QueueSize);
    private readonly Func<DescriptorChain, uint> _transmit;
    private readonly Libc.IoVec* _iov;
    private readonly Dictionary<ulong, VsockConnection> _byPorts = [];
    private readonly Queue<VsockConnection> _sendQueue = new();
    private readonly (uint Local, uint Peer)[] _resets = new (uint, uint)[ResetBacklog];
    private int _resetHead, _resetCount;
    private bool _malformedLogged;
    private bool _transportResetPending;

    /// <summary>Creates the device and listens on <paramref name="socketPath"/>.</summary>
    /// <param name="guestCid">The guest's context id: 3 to 0xFFFFFFFE.</param>
    /// <param name="socketPath">The Unix socket host programs connect to; created here (a stale socket file is replaced), removed by <see cref="VirtioDevice.Dispose()"/>.</param>
    /// <param name="logger">Receives the first guest error; null for none.</param>
    /// <param name="maxConnections">The bound on open connections.</param>
    /// <exception cref="ArgumentException">The cid or the bound is out of range.</exception>
    /// <exception cref="IOException">The socket path is in use or cannot be bound; the message names it.</exception>
    public VirtioVsock(ulong guestCid, string socketPath, ILogger? logger = null, int maxConnections = DefaultMaxConnections)
        : base(VirtioDeviceType.Vsock, 0, [QueueSize, QueueSize, EventQueueSize], logger)
    {
        ArgumentNullException.ThrowIfNull(socketPath);
        if (guestCid is < 3 or > 0xFFFF_FFFE)
        {
            throw new ArgumentException($"vsock guest cid {guestCid}: a guest's cid is 3 to 4294967294 (0-2 are reserved)", nameof(guestCid));
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
        if (System.Text.Encoding.UTF8.GetByteCount(socketPath) + 11 > UnixSocket.MaxPathBytes)
        {
            // Room for "_4294967295", the longest per-port socket a guest connection may need.
            throw new IOException($"vsock socket '{socketPath}': too long (at most {UnixSocket.MaxPathBytes - 11} bytes, to leave room for _PORT)");
        }
        GuestCid = guestCid;
        SocketPath = socketPath;
        MaxConnections = maxConnections;
        Name = $"virtio-vsock (cid {guestCid})";
        _logger = logger;
        _transmit = Transmit;
        (_listener, _epoll) = OpenHostSide(socketPath);
        _iov = (Libc.IoVec*)NativeMemory.Alloc(MaxIoVecs, (nuint)sizeof(Libc.IoVec));
    }

    /// <summary>The guest's context id.</summary>
    public ulong GuestCid { get; }

    /// <summary>The Unix socket host programs connect to.</summary>
    public string SocketPath { get; }

    /// <summary>The bound on open connections.</summary>
    public int MaxConnections { get; }

    /// <summary>Open connections (including host peers that have not yet sent their CONNECT line).</summary>
    public int ConnectionCount
    {
        get
        {
            lock (Sync)
            {
                return _byToken.Count;
            }
        }
    }

    /// <summary>Packets from the guest dropped or answered with RST because their header broke the rules.</summary>
    public long MalformedPackets { get; private set; }

    /// <summary>Connections refused because <see cref="MaxConnections"/> were open.</summary>
    public long ConnectionsRefused { get; private set; }

    /// <summary>RSTs not sent because the backlog was full (the guest posted no receive buffers).</summary>
    public long ResetsDropped { get; private set; }

    /// <summary>Packets the guest transmitted (well-formed or not).</summary>
    public long PacketsFromGuest { get; private set; }

    /// <summary>Packets the device put in the guest's receive buffers.</summary>
    public long PacketsToGuest { get; private set; }

    /// <summary>Payload bytes delivered to the guest.</summary>
    public long BytesToGuest { get; private set; }

    /// <summary>Payload bytes from the guest written to host sockets.</summary>
    public long BytesToHost { get; private set; }

    /// <inheritdoc/>
    public override int ConfigSize => 8;

    /// <inheritdoc/>
    protected override void ReadConfigSpace(uint offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(config, GuestCid);
        config.Slice((int)offset, data.Length).CopyTo(data);
    }

    /// <inheritdoc/>
    protected override void OnNotify(int queue)
    {
        if (queue == TxQueue)
        {
            Drain(TxQueue, _txChain, _transmit);
        }
        // Transmitted packets may owe replies; new receive buffers (queue 0) let waiting packets out.
        if (queue is TxQueue or RxQueue && !NeedsReset && Queues[RxQueue].IsActive)
        {
            FillRx();
        }
        if (queue == EventQueue && _transportResetPending)
        {
            SendTransportReset();
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Connections are not part of a snapshot (their host sockets cannot be): a restored device has none, and tells
    /// the guest with a TRANSPORT_RESET event, so its driver drops the connections it had, as Firecracker does.
    /// </remarks>
    protected override void OnRestored()
    {
        _transportResetPending = true;
        SendTransportReset();
    }

    /// <inheritdoc/>
    protected override void OnResume() => OnBackendReadable(); // what the host peers did meanwhile (epoll kept it)

    /// <inheritdoc/>
    protected override void OnReset()
    {
        // The guest's driver is gone: its connections are, too (their host peers see the socket close).
        CloseAll();
        _transportResetPending = false;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (Sync)
            {
                CloseHostSide();
            }
        }
        NativeMemory.Free(_iov);
        base.Dispose(disposing);
    }

    private static ulong Key(uint local, uint peer) => ((ulong)local << 32) | peer;

    private static long Now => Stopwatch.GetTimestamp();

    /// <summary>One packet from the guest.</summary>
    private uint Transmit(DescriptorChain chain)
    {
        PacketsFromGuest++;
        VsockHeader h = default;
        if (chain.ReadableLength < VsockHeader.Size || !CopyFromChain(chain.Readable, 0, AsBytes(ref h)))
        {
            Malformed($"a transmit buffer of {chain.ReadableLength} readable bytes has no room for the {VsockHeader.Size}-byte header");
            return 0;
        }
        if (h.SrcCid != GuestCid)
        {
            // Not answered: an RST would go to a cid that is not this guest's.
            Malformed($"src_cid {h.SrcCid} is not the guest's cid {GuestCid}");
            return 0;
        }
        _byPorts.TryGetValue(Key(h.DstPort, h.SrcPort), out VsockConnection? c);
        if (Check(in h, chain.ReadableLength - VsockHeader.Size) is { } bad)
        {
            Malformed(bad);
            if (c is not null)
            {
                Kill(c, resetGuest: true);
            }
            else if (h.Op != VsockOp.Rst)
            {
                QueueReset(h.DstPort, h.SrcPort);
            }
            return 0;
        }
        if (c is null)
        {
            if (h.Op == VsockOp.Request)
            {
                GuestConnect(in h);
            }
            else if (h.Op != VsockOp.Rst)
            {
                QueueReset(h.DstPort, h.SrcPort); // no such connection
            }
            return 0;
        }
        if (h.Op == VsockOp.Rst)
        {
            Kill(c, resetGuest: false);
            return 0;
        }
        c.PeerBufAlloc = h.BufAlloc;
        c.PeerFwdCnt = h.FwdCnt;
        switch (h.Op)
        {
            case VsockOp.Request:
                Kill(c, resetGuest: true); // a second REQUEST on an open connection
                break;
            case VsockOp.Response when c.State == VsockConnectionState.Connecting:
                c.State = VsockConnectionState.Established;
                if (!SendConnectReply(c))
                {
                    Kill(c, resetGuest: true);
                }
                break;
            case VsockOp.Response:
                Kill(c, resetGuest: true);
                break;
            case VsockOp.Shutdown:
                c.GuestDoneSending |= (h.Flags & VsockOp.ShutdownSend) != 0;
                c.GuestDoneReceiving |= (h.Flags & VsockOp.ShutdownReceive) != 0;
                AfterFlush(c);
                break;
            case VsockOp.Rw when c.State == VsockConnectionState.Established:
                FromGuest(c, chain, h.Len);
                break;
            case VsockOp.Rw:
                Kill(c, resetGuest: true);
                break;
            case VsockOp.CreditRequest:
                c.Pending |= VsockPending.CreditUpdate;
                break;
            default:
                break; // CREDIT_UPDATE: its buf_alloc and fwd_cnt are taken above
        }
        Schedule(c);
        return 0;
    }

    /// <summary>What is wrong with a header whose src_cid is the guest's, or null.</summary>
    private static string? Check(in VsockHeader h, ulong payloadRoom)
    {
        if (h.DstCid != HostCid)
        {
            return $"dst_cid {h.DstCid} is not the host's ({HostCid})";
        }
        if (h.Type != VsockOp.TypeStream)
        {
            return $"type {h.Type} is not STREAM ({VsockOp.TypeStream})";
        }
        if (h.Op is < VsockOp.Request or > VsockOp.CreditRequest)
        {
            return $"op {h.Op} is unknown";
        }
        if (h.Op != VsockOp.Rw && h.Len != 0)
        {
            return $"op {h.Op} carries len {h.Len}; only RW has a payload";
        }
        if (h.Len > MaxPayload)
        {
            return $"len {h.Len} is more than {MaxPayload}";
        }
        return h.Len > payloadRoom ? $"len {h.Len} is more than the {payloadRoom} bytes its buffers hold after the header" : null;
    }

    /// <summary>RW from the guest: straight from guest memory to the host socket; what it does not take waits in the connection's buffer.</summary>
    private void FromGuest(VsockConnection c, DescriptorChain chain, uint length)
    {
        int sent = 0;
        if (length > 0 && c.Buffered == 0 && c.HostWritable)
        {
            int n = Gather(chain.Readable, VsockHeader.Size, length, forWrite: false);
            nint w = n < 0 ? -1 : Send(c.Socket, n);
            if (w < 0)
            {
                if (n < 0 || Marshal.GetLastPInvokeError() != Libc.EAGAIN)
                {
                    Kill(c, resetGuest: true); // the host peer is gone
                    return;
                }
                c.HostWritable = false;
                w = 0;
            }
            sent = (int)w;
            Forwarded(c, sent);
        }
        int rest = (int)length - sent;
        if (rest > 0)
        {
            if (!c.TryBuffer(rest, (int)BufferSize, out Span<byte> first, out Span<byte> second))
            {
                Malformed($"the guest sent {rest} bytes on port {c.LocalPort} past the credit it was given ({BufferSize - c.Buffered} bytes)");
                Kill(c, resetGuest: true);
                return;
            }
            CopyFromChain(chain.Readable, (ulong)(VsockHeader.Size + sent), first);
            CopyFromChain(chain.Readable, (ulong)(VsockHeader.Size + sent + first.Length), second);
            Flush(c);
        }
        MaybeCreditUpdate(c);
    }

    /// <summary>Writes the connection's buffer to its host socket as far as the socket takes it.</summary>
    private void Flush(VsockConnection c)
    {
        while (!c.Closed && c.Buffered > 0 && c.HostWritable)
        {
            ReadOnlySpan<byte> head = c.BufferedHead();
            nint w;
            fixed (byte* p = head)
            {
                _iov[0].Base = p;
                _iov[0].Length = (nuint)head.Length;
                w = Send(c.Socket, 1);
            }
            if (w < 0)
            {
                if (Marshal.GetLastPInvokeError() != Libc.EAGAIN)
                {
                    Kill(c, resetGuest: true);
                    return;
                }
                c.HostWritable = false;
                break;
            }
            c.Consume((int)w);
            Forwarded(c, (int)w);
        }
        AfterFlush(c);
        MaybeCreditUpdate(c);
    }

    private void Forwarded(VsockConnection c, int n)
    {
        c.FwdCnt += (uint)n;
        BytesToHost += n;
    }

    /// <summary>Once the guest's bytes are all out: carry out its SHUTDOWN.</summary>
    private void AfterFlush(VsockConnection c)
    {
        if (c.Closed || c.Buffered > 0 || !c.GuestDoneSending)
        {
            return;
        }
        if (c.GuestDoneReceiving)
        {
            Kill(c, resetGuest: true); // both ways shut: the guest waits for our RST to free its socket
        }
        else if (!c.HostShutDown)
        {
            Libc.Shutdown(c.Socket, Libc.SHUT_WR);
            c.HostShutDown = true;
        }
    }

    /// <summary>
    /// Tells the guest of freed buffer space once a quarter of the buffer has been forwarded unreported, so a guest that
    /// used up its credit always hears of it (every other packet carries fwd_cnt, too).
    /// </summary>
    private void MaybeCreditUpdate(VsockConnection c)
    {
        if (!c.Closed && c.State == VsockConnectionState.Established && c.FwdCnt - c.FwdCntSent >= BufferSize / 4)
        {
            c.Pending |= VsockPending.CreditUpdate;
            Schedule(c);
        }
    }

    private void Schedule(VsockConnection c)
    {
        if (!c.Queued && c.HasWorkForGuest)
        {
            c.Queued = true;
            _sendQueue.Enqueue(c);
        }
    }

    /// <summary>
    /// Fills the guest's receive buffers: RSTs owed first, then the connections with something to send, one packet
    /// each in turn, so a busy connection does not starve the others.
    /// </summary>
    private void FillRx()
    {
        Virtqueue q = Queues[RxQueue];
        bool pushed = false;
        int idle = 0;
        while (!NeedsReset && (_resetCount > 0 || _sendQueue.Count > 0))
        {
            QueuePop pop = q.TryPop(_rxChain);
            if (pop == QueuePop.Error)
            {
                Fail($"queue {RxQueue}: {q.Error}");
                break;
            }
            if (pop == QueuePop.Empty)
            {
                if (q.ArmNotification())
                {
                    continue;
                }
                break;
            }
            if (_rxChain.WritableLength < VsockHeader.Size)
            {
                Fail($"receive buffer at descriptor {_rxChain.Head} has {_rxChain.WritableLength} writable bytes, no room for the {VsockHeader.Size}-byte header");
                break;
            }
            uint written;
            if (_resetCount > 0)
            {
                (uint local, uint peer) = _resets[_resetHead];
                _resetHead = (_resetHead + 1) % ResetBacklog;
                _resetCount--;
                written = WriteHeader(VsockOp.Rst, local, peer, 0, 0, 0, 0);
            }
            else
            {
                VsockConnection c = _sendQueue.Dequeue();
                c.Queued = false;
                written = c.Closed ? 0 : WriteNext(c);
                Schedule(c);
            }
            if (NeedsReset)
            {
                break;
            }
            if (written == 0)
            {
                // Nothing fitted this buffer (or the host had nothing after all): offer it to the next connection,
                // and stop once every waiting connection has had its turn.
                q.Unpop();
                if (++idle > _sendQueue.Count)
                {
                    break;
                }
                continue;
            }
            idle = 0;
            if (!q.TryPushUsed(_rxChain.Head, written))
            {
                Fail($"queue {RxQueue}: {q.Error}");
                break;
            }
            pushed = true;
            PacketsToGuest++;
        }
        if (pushed && q.IsActive && q.NeedsInterrupt())
        {
            Interrupt.SignalUsedBuffers();
        }
    }

    /// <summary>The connection's next packet into <see cref="_rxChain"/>; the bytes written, 0 if it had none that fits.</summary>
    private uint WriteNext(VsockConnection c)
    {
        if ((c.Pending & VsockPending.Request) != 0)
        {
            c.Pending &= ~VsockPending.Request;
            return WriteControl(c, VsockOp.Request, 0);
        }
        if ((c.Pending & VsockPending.Response) != 0)
        {
            c.Pending &= ~VsockPending.Response;
            return WriteControl(c, VsockOp.Response, 0);
        }
        if (c.CanReadHost && ReadHost(c) is var n and > 0)
        {
            return n;
        }
        if (c.Closed)
        {
            return 0;
        }
        if ((c.Pending & VsockPending.Shutdown) != 0)
        {
            c.Pending &= ~VsockPending.Shutdown;
            uint flags = VsockOp.ShutdownSend | (c.HostHangUp ? VsockOp.ShutdownReceive : 0);
            c.ShutdownSent |= flags;
            c.Since = Now;
            return WriteControl(c, VsockOp.Shutdown, flags);
        }
        if ((c.Pending & VsockPending.CreditUpdate) != 0)
        {
            return WriteControl(c, VsockOp.CreditUpdate, 0);
        }
        return 0;
    }

    /// <summary>Reads host bytes into the receive buffer after the header, as many as the guest's credit and the buffer allow.</summary>
    private uint ReadHost(VsockConnection c)
    {
        ulong room = _rxChain.WritableLength - VsockHeader.Size;
        uint max = (uint)Math.Min(Math.Min(room, c.PeerCredit), MaxPayload);
        if (max == 0)
        {
            return 0;
        }
        int n = Gather(_rxChain.Writable, VsockHeader.Size, max, forWrite: true);
        if (n < 0)
        {
            Fail($"receive buffer at descriptor {_rxChain.Head} is not writable guest memory");
            return 0;
        }
        nint got = Libc.Readv(c.Socket, _iov, n);
        if (got < 0)
        {
            if (Marshal.GetLastPInvokeError() == Libc.EAGAIN)
            {
                c.HostReadable = false;
            }
            else
            {
                Kill(c, resetGuest: true);
            }
            return 0;
        }
        if (got == 0)
        {
            c.HostEof = true;
            c.Pending |= VsockPending.Shutdown;
            return 0;
        }
        WriteHeader(VsockOp.Rw, c.LocalPort, c.PeerPort, (uint)got, 0, c.FwdCnt, BufferSize);
        c.FwdCntSent = c.FwdCnt;
        c.Pending &= ~VsockPending.CreditUpdate;
        c.RxCnt += (uint)got;
        BytesToGuest += got;
        return VsockHeader.Size + (uint)got;
    }

    private uint WriteControl(VsockConnection c, ushort op, uint flags)
    {
        c.FwdCntSent = c.FwdCnt;
        c.Pending &= ~VsockPending.CreditUpdate; // every header carries buf_alloc and fwd_cnt
        return WriteHeader(op, c.LocalPort, c.PeerPort, 0, flags, c.FwdCnt, BufferSize);
    }

    private uint WriteHeader(ushort op, uint local, uint peer, uint length, uint flags, uint fwdCnt, uint bufAlloc)
    {
        var h = new VsockHeader
        {
            SrcCid = HostCid,
            DstCid = GuestCid,
            SrcPort = local,
            DstPort = peer,
            Len = length,
            Type = VsockOp.TypeStream,
            Op = op,
            Flags = flags,
            BufAlloc = bufAlloc,
            FwdCnt = fwdCnt,
        };
        if (!CopyToChain(_rxChain.Writable, AsBytes(ref h)))
        {
            Fail($"receive buffer at descriptor {_rxChain.Head} is not writable guest memory");
            return 0;
        }
        return VsockHeader.Size;
    }

    /// <summary>VIRTIO_VSOCK_EVENT_TRANSPORT_RESET into the next event buffer; stays pending while the guest has posted none.</summary>
    private void SendTransportReset()
    {
        Virtqueue q = Queues[EventQueue];
        if (!IsActive || NeedsReset || !q.IsActive)
        {
            return;
        }
        QueuePop pop = q.TryPop(_rxChain);
        if (pop == QueuePop.Error)
        {
            Fail($"queue {EventQueue}: {q.Error}");
            return;
        }
        if (pop == QueuePop.Empty)
        {
            q.ArmNotification();
            return;
        }
        Span<byte> ev = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(ev, EventTransportReset);
        if (_rxChain.WritableLength < 4 || !CopyToChain(_rxChain.Writable, ev))
        {
            Fail($"event buffer at descriptor {_rxChain.Head} has no 4 writable bytes for an event");
            return;
        }
        _transportResetPending = false;
        if (!q.TryPushUsed(_rxChain.Head, 4))
        {
            Fail($"queue {EventQueue}: {q.Error}");
            return;
        }
        if (q.NeedsInterrupt())
        {
            Interrupt.SignalUsedBuffers();
        }
    }

    private void QueueReset(uint local, uint peer)
    {
        if (_resetCount == ResetBacklog)
        {
            ResetsDropped++;
            return;
        }
        _resets[(_resetHead + _resetCount) % ResetBacklog] = (local, peer);
        _resetCount++;
    }

    private void Malformed(string reason)
    {
        MalformedPackets++;
        if (!_malformedLogged && _logger is not null)
        {
            LogMalformed(_logger, Name, reason);
        }
        _malformedLogged = true;
    }

    private static Span<byte> AsBytes(ref VsockHeader h) => MemoryMarshal.AsBytes(new Span<VsockHeader>(ref h));

    /// <summary>
    /// Fills the iovec array with the host spans of <paramref name="length"/> bytes of <paramref name="segments"/> from
    /// byte <paramref name="skip"/>; -1 if they are not all guest memory (writable, with <paramref name="forWrite"/>) or do not fit.
    /// </summary>
    private int Gather(ReadOnlySpan<ChainSegment> segments, ulong skip, ulong length, bool forWrite)
    {
        int n = 0;
        foreach (ChainSegment s in segments)
        {
            if (length == 0)
            {
                break;
            }
            if (skip >= s.Length)
            {
                skip -= s.Length;
                continue;
            }
            ulong address = s.Address + skip, remaining = Math.Min(s.Length - skip, length);
            skip = 0;
            length -= remaining;
            while (Memory.NextSpan(ref address, ref remaining, forWrite, out Span<byte> span))
            {
                if (n == MaxIoVecs)
                {
                    return -1;
                }
                _iov[n].Base = Unsafe.AsPointer(ref MemoryMarshal.GetReference(span));
                _iov[n].Length = (nuint)span.Length;
                n++;
            }
            if (remaining != 0)
            {
                return -1;
            }
        }
        return length == 0 ? n : -1;
    }

    private bool CopyFromChain(ReadOnlySpan<ChainSegment> segments, ulong skip, Span<byte> destination)
    {
        int n = Gather(segments, skip, (ulong)destination.Length, forWrite: false);
        if (n < 0)
        {
            return false;
        }
        for (int i = 0, at = 0; i < n; i++)
        {
            new ReadOnlySpan<byte>(_iov[i].Base, (int)_iov[i].Length).CopyTo(destination[at..]);
            at += (int)_iov[i].Length;
        }
        return true;
    }

    private bool CopyToChain(ReadOnlySpan<ChainSegment> segments, ReadOnlySpan<byte> source)
    {
        int n = Gather(segments, 0, (ulong)source.Length, forWrite: true);
        if (n < 0)
        {
            return false;
        }
        for (int i = 0, at = 0; i < n; i++)
        {
            source.Slice(at, (int)_iov[i].Length).CopyTo(new Span<byte>(_iov[i].Base, (int)_iov[i].Length));
            at += (int)_iov[i].Length;
        }
        return true;
    }

    private nint Send(SafeFileDescriptor socket, int iovCount)
    {
        var message = new Libc.MsgHdr { Iov = _iov, IovLength = (nuint)iovCount };
        return Libc.SendMsg(socket, &message, Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Device}: a malformed packet from the guest ({Reason}) was answered with RST or dropped; later ones are counted, not logged")]
    private static partial void LogMalformed(ILogger logger, string device, string reason);
}
