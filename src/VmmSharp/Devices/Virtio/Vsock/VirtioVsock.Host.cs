using System.Runtime.InteropServices;
using VmmSharp.Interop;

namespace VmmSharp.Devices.Virtio.Vsock;

/// <content>
/// The host side: the listening socket, the host peers' sockets and the epoll instance that watches them all
/// (edge-triggered, so each event is taken once and the flags on the connection remember what is possible).
/// </content>
public sealed unsafe partial class VirtioVsock
{
    private const ulong ListenerToken = 0;
    private const uint FirstLocalPort = 1u << 30;
    private const int EventsPerWait = 16;

    private readonly SafeFileDescriptor _listener;
    private readonly SafeFileDescriptor _epoll;
    private readonly Dictionary<ulong, VsockConnection> _byToken = [];
    private ulong _nextToken = ListenerToken + 1;
    private uint _nextLocalPort = FirstLocalPort;
    private bool _hostClosed;

    /// <summary>
    /// The device's epoll instance over its host sockets, for the machine's event loop to watch
    /// (<see cref="Events.EventLoop.AddReadable"/>, calling <see cref="OnBackendReadable"/>).
    /// </summary>
    public SafeHandle Backend => _epoll;

    /// <summary>
    /// A host socket is ready: accept host peers, read their CONNECT lines, move bytes as credit and receive buffers
    /// allow. Runs on the event loop's thread; never blocks.
    /// </summary>
    public void OnBackendReadable()
    {
        lock (Sync)
        {
            if (_hostClosed || IsPaused)
            {
                return; // the events wait in the epoll set (resuming takes them)
            }
            Libc.EpollEvent* events = stackalloc Libc.EpollEvent[EventsPerWait];
            while (true)
            {
                // Edge-triggered all the way down: take every event, or the outer loop would not hear of the rest.
                int n = Libc.EpollWait(_epoll, events, EventsPerWait, 0);
                if (n < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR)
                {
                    continue;
                }
                if (n <= 0)
                {
                    break;
                }
                for (int i = 0; i < n; i++)
                {
                    HostEvent(events[i].Data, events[i].Events);
                }
            }
            if (IsActive && !NeedsReset && Queues[RxQueue].IsActive)
            {
                FillRx();
            }
        }
    }

    private static (SafeFileDescriptor Listener, SafeFileDescriptor Epoll) OpenHostSide(string path)
    {
        int fd = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"vsock socket '{path}': epoll_create1: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        }
        var epoll = new SafeFileDescriptor(fd);
        try
        {
            SafeFileDescriptor listener = UnixSocket.Listen(path);
            var ev = new Libc.EpollEvent { Events = Libc.EPOLLIN | Libc.EPOLLET, Data = ListenerToken };
            if (Libc.EpollCtl(epoll, Libc.EPOLL_CTL_ADD, listener, &ev) < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                listener.Dispose();
                Libc.Unlink(path);
                throw new IOException($"vsock socket '{path}': epoll_ctl: {Libc.ErrorText(errno)}");
            }
            return (listener, epoll);
        }
        catch
        {
            epoll.Dispose();
            throw;
        }
    }

    private void HostEvent(ulong token, uint events)
    {
        if (token == ListenerToken)
        {
            AcceptAll();
            return;
        }
        if (!_byToken.TryGetValue(token, out VsockConnection? c))
        {
            return; // closed since
        }
        if ((events & (Libc.EPOLLIN | Libc.EPOLLRDHUP | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0)
        {
            c.HostReadable = true;
        }
        if ((events & (Libc.EPOLLOUT | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0)
        {
            c.HostWritable = true; // a write then says what is wrong
        }
        c.HostHangUp |= (events & Libc.EPOLLHUP) != 0;
        if (c.State == VsockConnectionState.AwaitingConnectLine)
        {
            if (c.HostReadable)
            {
                ReadConnectLine(c);
            }
            return;
        }
        if (c.Buffered > 0)
        {
            Flush(c);
        }
        if (c.Closed)
        {
            return;
        }
        if (c.HostHangUp && (c.HostEof || c.GuestDoneReceiving) && (c.ShutdownSent & VsockOp.ShutdownReceive) == 0)
        {
            c.Pending |= VsockPending.Shutdown;
        }
        Schedule(c);
    }

    private void AcceptAll()
    {
        while (UnixSocket.TryAccept(_listener) is { } socket)
        {
            if (!IsActive || NeedsReset)
            {
                socket.Dispose(); // no driver to connect to: the host peer sees the socket close
                continue;
            }
            if (!HasRoom())
            {
                ConnectionsRefused++;
                socket.Dispose();
                continue;
            }
            var c = new VsockConnection(_nextToken++, socket, VsockConnectionState.AwaitingConnectLine, Now);
            if (!Watch(c))
            {
                socket.Dispose();
                continue;
            }
            _byToken[c.Token] = c;
        }
    }

    /// <summary>Reads the host peer's <c>CONNECT port\n</c> a byte at a time, so nothing after the line is taken early.</summary>
    private void ReadConnectLine(VsockConnection c)
    {
        byte b;
        while (true)
        {
            nint r = Libc.Read(c.Socket, &b, 1);
            if (r < 0 && Marshal.GetLastPInvokeError() == Libc.EAGAIN)
            {
                c.HostReadable = false;
                return;
            }
            if (r <= 0)
            {
                Kill(c, resetGuest: false);
                return;
            }
            if (c.TryAddConnectLineByte(b, out uint port, out bool invalid))
            {
                c.LocalPort = NextLocalPort();
                c.PeerPort = port;
                c.State = VsockConnectionState.Connecting;
                c.Since = Now;
                c.Pending = VsockPending.Request;
                _byPorts[Key(c.LocalPort, c.PeerPort)] = c;
                Schedule(c);
                return; // bytes after the line are the guest's, once it accepts
            }
            if (invalid)
            {
                Kill(c, resetGuest: false);
                return;
            }
        }
    }

    /// <summary>The guest accepted a host-initiated connection: tell the host peer <c>OK hostport\n</c>.</summary>
    private bool SendConnectReply(VsockConnection c)
    {
        Span<byte> line = stackalloc byte[16];
        "OK "u8.CopyTo(line);
        c.LocalPort.TryFormat(line[3..], out int digits, provider: System.Globalization.CultureInfo.InvariantCulture);
        line[3 + digits] = (byte)'\n';
        int length = 4 + digits;
        fixed (byte* p = line)
        {
            _iov[0].Base = p;
            _iov[0].Length = (nuint)length;
            // A fresh socket's buffer takes 16 bytes; if it does not, the peer is not usable.
            return Send(c.Socket, 1) == length;
        }
    }

    /// <summary>The guest's REQUEST to host port P: connect to <c>SocketPath_P</c> at once, RESPONSE or RST.</summary>
    private void GuestConnect(in VsockHeader h)
    {
        if (!HasRoom())
        {
            ConnectionsRefused++;
            QueueReset(h.DstPort, h.SrcPort);
            return;
        }
        SafeFileDescriptor? socket = UnixSocket.TryConnect($"{SocketPath}_{h.DstPort}", out _);
        if (socket is null)
        {
            QueueReset(h.DstPort, h.SrcPort); // nobody listens there
            return;
        }
        var c = new VsockConnection(_nextToken++, socket, VsockConnectionState.Established, Now)
        {
            LocalPort = h.DstPort,
            PeerPort = h.SrcPort,
            PeerBufAlloc = h.BufAlloc,
            PeerFwdCnt = h.FwdCnt,
            Pending = VsockPending.Response,
        };
        if (!Watch(c))
        {
            socket.Dispose();
            QueueReset(h.DstPort, h.SrcPort);
            return;
        }
        _byToken[c.Token] = c;
        _byPorts[Key(c.LocalPort, c.PeerPort)] = c;
        Schedule(c);
    }

    /// <summary>
    /// Whether a new connection may open: below the bound, or at it once the longest-waiting connection that has waited
    /// on the other side for <see cref="ReapAfter"/> is dropped for it.
    /// </summary>
    private bool HasRoom()
    {
        if (_byToken.Count < MaxConnections)
        {
            return true;
        }
        long cutoff = Now - (long)(ReapAfter.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        VsockConnection? oldest = null;
        foreach (VsockConnection c in _byToken.Values)
        {
            bool waiting = c.State != VsockConnectionState.Established || c.ShutdownSent != 0;
            if (waiting && c.Since < cutoff && (oldest is null || c.Since < oldest.Since))
            {
                oldest = c;
            }
        }
        if (oldest is null)
        {
            return false;
        }
        Kill(oldest, resetGuest: true);
        return true;
    }

    private uint NextLocalPort()
    {
        while (true)
        {
            uint port = _nextLocalPort;
            _nextLocalPort = _nextLocalPort == uint.MaxValue ? FirstLocalPort : _nextLocalPort + 1;
            bool used = false;
            foreach (VsockConnection c in _byPorts.Values)
            {
                used |= c.LocalPort == port;
            }
            if (!used)
            {
                return port;
            }
        }
    }

    private bool Watch(VsockConnection c)
    {
        var ev = new Libc.EpollEvent
        {
            Events = Libc.EPOLLIN | Libc.EPOLLOUT | Libc.EPOLLRDHUP | Libc.EPOLLET,
            Data = c.Token,
        };
        return Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, c.Socket, &ev) == 0;
    }

    /// <summary>Drops a connection and closes its host socket; with <paramref name="resetGuest"/>, tells the guest with RST.</summary>
    private void Kill(VsockConnection c, bool resetGuest)
    {
        if (c.Closed)
        {
            return;
        }
        c.Closed = true;
        if (c.State != VsockConnectionState.AwaitingConnectLine)
        {
            if (resetGuest)
            {
                QueueReset(c.LocalPort, c.PeerPort);
            }
            _byPorts.Remove(Key(c.LocalPort, c.PeerPort));
        }
        _byToken.Remove(c.Token);
        c.Socket.Dispose(); // closing it takes it out of the epoll set
    }

    private void CloseAll()
    {
        foreach (VsockConnection c in _byToken.Values)
        {
            c.Closed = true;
            c.Socket.Dispose();
        }
        _byToken.Clear();
        _byPorts.Clear();
        _sendQueue.Clear();
        _resetHead = _resetCount = 0;
    }

    private void CloseHostSide()
    {
        if (_hostClosed)
        {
            return;
        }
        _hostClosed = true;
        CloseAll();
        _listener.Dispose();
        _epoll.Dispose();
        Libc.Unlink(SocketPath);
    }
}
