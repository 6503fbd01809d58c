using System.Net.Sockets;
using System.Text;
using VmmSharp.Devices.Virtio.Vsock;
using VmmSharp.Events;
using static VmmSharp.Tests.Devices.Virtio.Vsock.VsockTestGuest;

namespace VmmSharp.Tests.Devices.Virtio.Vsock;

/// <summary>
/// virtio-vsock with Firecracker's hybrid host side, driven by a hand-played guest driver in real guest memory and by
/// real Unix sockets on the host: handshakes both ways, data and credit, closing, hostile headers, the bounds.
/// </summary>
public sealed class VirtioVsockTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmmsharp-vsock").FullName;
    private readonly List<IDisposable> _owned = [];

    private string Uds => Path.Combine(_dir, "v.sock");

    public void Dispose()
    {
        foreach (IDisposable d in Enumerable.Reverse(_owned))
        {
            d.Dispose();
        }
        Directory.Delete(_dir, recursive: true);
    }

    private VsockTestGuest Guest(int maxConnections = VirtioVsock.DefaultMaxConnections)
    {
        var guest = new VsockTestGuest(Uds, maxConnections);
        _owned.Add(guest);
        guest.PostRx(32);
        return guest;
    }

    private Socket HostListener(uint port)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _owned.Add(listener);
        listener.Bind(new UnixDomainSocketEndPoint($"{Uds}_{port}"));
        listener.Listen(16);
        return listener;
    }

    private Socket HostConnect(string? line = null)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 10_000 };
        _owned.Add(s);
        s.Connect(new UnixDomainSocketEndPoint(Uds));
        if (line is not null)
        {
            s.Send(Encoding.ASCII.GetBytes(line));
        }
        return s;
    }

    private Socket Own(Socket s)
    {
        _owned.Add(s);
        return s;
    }

    private static string ReadLine(Socket s)
    {
        var sb = new StringBuilder();
        byte[] b = new byte[1];
        while (s.Receive(b) == 1 && b[0] != '\n')
        {
            sb.Append((char)b[0]);
        }
        return sb.ToString();
    }

    /// <summary>Whether the host's end sees the connection closed (EOF, or reset) within the receive timeout.</summary>
    private static bool SeesClose(Socket s)
    {
        try
        {
            return s.Receive(new byte[64]) == 0;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }

    [Fact]
    public void The_configuration_space_holds_the_guest_cid()
    {
        VsockTestGuest g = Guest();
        Assert.Equal((uint)Cid, g.Driver.Read(0x100));
        Assert.Equal(0u, g.Driver.Read(0x104));
    }

    [Fact]
    public void A_host_CONNECT_becomes_a_REQUEST_and_the_guests_RESPONSE_answers_OK_with_the_host_port()
    {
        VsockTestGuest g = Guest();
        Socket host = HostConnect("CONNECT 1234\n");

        VsockHeader request = g.Poll().Single().Header;

        Assert.Equal((VsockOp.Request, VirtioVsock.HostCid, Cid, 1234u, VsockOp.TypeStream), (request.Op, request.SrcCid, request.DstCid, request.DstPort, request.Type));
        Assert.True(request.SrcPort >= 1u << 30, $"host port {request.SrcPort}");
        Assert.Equal(VirtioVsock.BufferSize, request.BufAlloc);
        g.Send(Header(VsockOp.Response, 1234, request.SrcPort));
        Assert.Equal($"OK {request.SrcPort}", ReadLine(host));
        Assert.Equal(1, g.Device.ConnectionCount);
    }

    [Fact]
    public void A_guest_REQUEST_to_host_port_P_connects_to_the_socket_uds_P_and_gets_a_RESPONSE()
    {
        VsockTestGuest g = Guest();
        Socket listener = HostListener(5000);

        Own(g.ConnectToHost(listener, 5000, 40000));

        Assert.Equal(1, g.Device.ConnectionCount);
    }

    [Fact]
    public void A_guest_REQUEST_to_a_port_nobody_listens_on_gets_RST()
    {
        VsockTestGuest g = Guest();

        g.Send(Header(VsockOp.Request, 40000, 5001));

        VsockHeader rst = g.ReceiveOne(VsockOp.Rst);
        Assert.Equal((5001u, 40000u, Cid), (rst.SrcPort, rst.DstPort, rst.DstCid));
        Assert.Equal(0, g.Device.ConnectionCount);
    }

    [Fact]
    public void Bytes_flow_both_ways_on_a_guest_initiated_connection()
    {
        VsockTestGuest g = Guest();
        Socket host = Own(g.ConnectToHost(HostListener(5000), 5000, 40000));

        g.Send(Header(VsockOp.Rw, 40000, 5000, len: 6), "hello\n"u8);
        byte[] got = new byte[6];
        Assert.Equal(6, host.Receive(got));
        Assert.Equal("hello\n", Encoding.ASCII.GetString(got));

        host.Send("world"u8.ToArray());
        (VsockHeader h, byte[] payload) = g.Poll().Single();
        Assert.Equal((VsockOp.Rw, 5000u, 40000u, 5u), (h.Op, h.SrcPort, h.DstPort, h.Len));
        Assert.Equal("world", Encoding.ASCII.GetString(payload));
        Assert.Equal(6u, h.FwdCnt); // the guest's 6 bytes reached the host
    }

    [Fact]
    public void Bytes_after_the_CONNECT_line_wait_for_the_guests_RESPONSE_and_then_reach_it()
    {
        VsockTestGuest g = Guest();
        Socket host = HostConnect("CONNECT 7\nearly bytes");
        VsockHeader request = g.Poll().Single().Header;
        Assert.Equal(VsockOp.Request, request.Op);

        g.Send(Header(VsockOp.Response, 7, request.SrcPort));

        Assert.Equal($"OK {request.SrcPort}", ReadLine(host));
        (VsockHeader h, byte[] payload) = g.Received().Single();
        Assert.Equal(VsockOp.Rw, h.Op);
        Assert.Equal("early bytes", Encoding.ASCII.GetString(payload));
    }

    [Fact]
    public void A_guest_that_advertises_4_KiB_never_has_more_than_4_KiB_in_flight()
    {
        VsockTestGuest g = Guest();
        Socket host = Own(g.ConnectToHost(HostListener(5000), 5000, 40000, bufAlloc: 4096));
        host.Send(new byte[20_000]);

        int first = g.Poll().Sum(p => p.Payload.Length);
        Assert.Equal(4096, first);
        Assert.Empty(g.Poll()); // still no credit: nothing more, whatever the host has

        // The guest's application read 1000 bytes: 1000 more may come.
        g.Send(Header(VsockOp.CreditUpdate, 40000, 5000, bufAlloc: 4096, fwdCnt: 1000));
        Assert.Equal(1000, g.Received().Sum(p => p.Payload.Length));

        g.Send(Header(VsockOp.CreditUpdate, 40000, 5000, bufAlloc: 4096, fwdCnt: 5096));
        Assert.Equal(4096, g.Received().Sum(p => p.Payload.Length));
        Assert.Equal(4096L + 1000 + 4096, g.Device.BytesToGuest);
    }

    [Fact]
    public void A_host_peer_that_does_not_read_stops_the_guest_by_credit_and_others_carry_on()
    {
        VsockTestGuest g = Guest();
        Socket listener = HostListener(5000);
        Socket slow = Own(g.ConnectToHost(listener, 5000, 40000));
        Socket other = Own(g.ConnectToHost(listener, 5000, 40001));

        // A polite guest sends while the device's credit lets it: the host peer reads nothing.
        uint sent = 0, peerFwd = 0, peerBuf = VirtioVsock.BufferSize;
        byte[] chunk = new byte[60_000];
        for (int i = 0; i < 200; i++)
        {
            uint credit = peerBuf - (sent - peerFwd);
            if (credit == 0)
            {
                break;
            }
            uint n = Math.Min(credit, (uint)chunk.Length);
            g.Send(Header(VsockOp.Rw, 40000, 5000, len: n), chunk.AsSpan(0, (int)n));
            sent += n;
            foreach ((VsockHeader h, _) in g.Poll())
            {
                if (h.DstPort == 40000)
                {
                    (peerFwd, peerBuf) = (h.FwdCnt, h.BufAlloc);
                }
            }
        }
        Assert.Equal(sent - VirtioVsock.BufferSize, peerFwd); // stopped with the buffer full: 64 KiB held, no more
        Assert.Equal(peerFwd, (uint)g.Device.BytesToHost);

        // The other connection is not held up by the slow one.
        g.Send(Header(VsockOp.Rw, 40001, 5000, len: 3), "abc"u8);
        byte[] three = new byte[3];
        Assert.Equal(3, other.Receive(three));

        // One byte past the credit: the connection is reset, the guest told so, and the rest of the device carries on.
        g.Send(Header(VsockOp.Rw, 40000, 5000, len: 1), "x"u8);
        VsockHeader rst = g.ReceiveOne(VsockOp.Rst);
        Assert.Equal(40000u, rst.DstPort);
        Assert.Equal(1, g.Device.ConnectionCount);
        Assert.False(g.Device.NeedsReset);
        Assert.Equal(1, g.Device.MalformedPackets);
    }

    [Fact]
    public void A_host_peer_that_closes_gets_the_guest_a_SHUTDOWN_and_the_guests_RST_ends_the_connection()
    {
        VsockTestGuest g = Guest();
        Socket host = g.ConnectToHost(HostListener(5000), 5000, 40000);
        host.Send("last"u8.ToArray());
        host.Dispose();

        List<(VsockHeader Header, byte[] Payload)> got = g.Poll();

        Assert.Equal([VsockOp.Rw, VsockOp.Shutdown], got.Select(p => p.Header.Op));
        Assert.Equal("last", Encoding.ASCII.GetString(got[0].Payload));
        Assert.Equal(VsockOp.ShutdownSend | VsockOp.ShutdownReceive, got[1].Header.Flags);
        g.Send(Header(VsockOp.Rst, 40000, 5000));
        Assert.Equal(0, g.Device.ConnectionCount);
        Assert.Empty(g.Received()); // no RST in answer to an RST
    }

    [Fact]
    public void A_guest_RST_closes_the_host_socket()
    {
        VsockTestGuest g = Guest();
        Socket host = Own(g.ConnectToHost(HostListener(5000), 5000, 40000));

        g.Send(Header(VsockOp.Rst, 40000, 5000));

        Assert.True(SeesClose(host));
        Assert.Equal(0, g.Device.ConnectionCount);
    }

    [Fact]
    public void A_guest_RST_to_a_host_CONNECT_closes_the_host_socket_without_OK()
    {
        VsockTestGuest g = Guest();
        Socket host = HostConnect("CONNECT 99\n");
        VsockHeader request = g.Poll().Single().Header;

        g.Send(Header(VsockOp.Rst, 99, request.SrcPort));

        Assert.True(SeesClose(host));
    }

    [Fact]
    public void A_guest_SHUTDOWN_of_both_directions_is_flushed_then_answered_with_RST()
    {
        VsockTestGuest g = Guest();
        Socket host = Own(g.ConnectToHost(HostListener(5000), 5000, 40000));
        g.Send(Header(VsockOp.Rw, 40000, 5000, len: 4), "bye\n"u8);

        g.Send(Header(VsockOp.Shutdown, 40000, 5000, flags: VsockOp.ShutdownSend | VsockOp.ShutdownReceive));

        Assert.Equal(VsockOp.Rst, g.Received().Last().Header.Op);
        byte[] got = new byte[4];
        Assert.Equal(4, host.Receive(got));
        Assert.True(SeesClose(host));
    }

    [Fact]
    public void A_guest_SHUTDOWN_of_sending_half_closes_the_host_socket_and_host_bytes_still_come()
    {
        VsockTestGuest g = Guest();
        Socket host = Own(g.ConnectToHost(HostListener(5000), 5000, 40000));

        g.Send(Header(VsockOp.Shutdown, 40000, 5000, flags: VsockOp.ShutdownSend));

        Assert.Equal(0, host.Receive(new byte[1])); // EOF: the guest sends no more
        host.Send("reply"u8.ToArray());
        Assert.Equal("reply", Encoding.ASCII.GetString(g.Poll().Single().Payload));
    }

    [Fact]
    public void A_CREDIT_REQUEST_is_answered_with_a_CREDIT_UPDATE()
    {
        VsockTestGuest g = Guest();
        Own(g.ConnectToHost(HostListener(5000), 5000, 40000));

        g.Send(Header(VsockOp.CreditRequest, 40000, 5000));

        VsockHeader update = g.ReceiveOne(VsockOp.CreditUpdate);
        Assert.Equal((VirtioVsock.BufferSize, 0u), (update.BufAlloc, update.FwdCnt));
    }

    [Fact]
    public void Packets_for_a_connection_that_does_not_exist_get_RST()
    {
        VsockTestGuest g = Guest();

        g.Send(Header(VsockOp.Rw, 40000, 5000, len: 2), "hi"u8);
        g.Send(Header(VsockOp.Response, 40000, 5000));

        Assert.Equal([VsockOp.Rst, VsockOp.Rst], g.Received().Select(p => p.Header.Op));
        Assert.Equal(0, g.Device.MalformedPackets); // the protocol's answer, not a broken header
    }

    public static TheoryData<string, ulong, ulong, ushort, ushort, uint, bool> MalformedHeaders => new()
    {
        // name, src_cid, dst_cid, type, op, len (payload sent with it), answered with RST
        { "src_cid not the guest's", 7, 2, 1, VsockOp.Request, 0, false },
        { "dst_cid not the host", 3, 5, 1, VsockOp.Request, 0, true },
        { "type not STREAM", 3, 2, 2, VsockOp.Request, 0, true },
        { "unknown op", 3, 2, 1, 99, 0, true },
        { "control packet with a payload", 3, 2, 1, VsockOp.Request, 8, true },
        { "len past the buffers", 3, 2, 1, VsockOp.Rw, 1_000_000, true },
    };

    [Theory]
    [MemberData(nameof(MalformedHeaders))]
    public void A_malformed_header_is_answered_with_RST_or_dropped_and_the_device_carries_on(string name, ulong srcCid, ulong dstCid, ushort type, ushort op, uint len, bool rst)
    {
        VsockTestGuest g = Guest();
        Socket listener = HostListener(5000);
        VsockHeader h = Header(op, 40000, 5000, len: len) with { SrcCid = srcCid, DstCid = dstCid, Type = type };

        g.Send(h, new byte[Math.Min(len, 8)]);

        Assert.Equal(rst ? [VsockOp.Rst] : Array.Empty<ushort>(), g.Received().Select(p => p.Header.Op));
        Assert.True(g.Device.MalformedPackets == 1, name);
        Assert.Equal(0, g.Device.ConnectionCount);
        Assert.False(g.Device.NeedsReset);
        Own(g.ConnectToHost(listener, 5000, 40001)); // still serving
    }

    [Fact]
    public void A_transmit_buffer_shorter_than_the_header_is_dropped_and_the_device_carries_on()
    {
        VsockTestGuest g = Guest();

        g.Send(Header(VsockOp.Request, 40000, 5000), headerLength: 20);

        Assert.Empty(g.Received());
        Assert.Equal(1, g.Device.MalformedPackets);
        Assert.False(g.Device.NeedsReset);
    }

    [Fact]
    public void A_receive_buffer_smaller_than_the_header_makes_the_device_need_a_reset()
    {
        using var g = new VsockTestGuest(Uds);
        g.PostRx(1, length: 16);

        g.Send(Header(VsockOp.Request, 40000, 5001)); // owes an RST: into the too-small buffer

        Assert.True(g.Device.NeedsReset);
        Assert.Contains("no room for the 44-byte header", g.Device.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Connections_past_the_bound_are_refused_both_ways()
    {
        VsockTestGuest g = Guest(maxConnections: 3);
        Socket listener = HostListener(5000);
        for (uint i = 0; i < 3; i++)
        {
            Own(g.ConnectToHost(listener, 5000, 40000 + i));
        }

        g.Send(Header(VsockOp.Request, 40003, 5000));
        Assert.Equal(40003u, g.ReceiveOne(VsockOp.Rst).DstPort);

        Socket host = HostConnect("CONNECT 1\n");
        Assert.Empty(g.Poll());
        Assert.True(SeesClose(host));
        Assert.Equal(2, g.Device.ConnectionsRefused);
        Assert.Equal(3, g.Device.ConnectionCount);
    }

    [Fact]
    public void A_REQUEST_flood_with_no_receive_buffers_keeps_a_bounded_backlog_of_RSTs()
    {
        using var g = new VsockTestGuest(Uds);
        for (uint i = 0; i < 300; i++)
        {
            g.Send(Header(VsockOp.Request, 40000 + i, 6000)); // nobody listens: each owes an RST
        }

        Assert.Equal(300 - VirtioVsock.ResetBacklog, g.Device.ResetsDropped);
        g.PostRx(VsockTestGuest.RingSize);
        List<(VsockHeader Header, byte[] Payload)> got = g.Received();
        Assert.Equal(VirtioVsock.ResetBacklog, got.Count);
        Assert.All(got, p => Assert.Equal(VsockOp.Rst, p.Header.Op));
        Assert.Equal(0, g.Device.ConnectionCount);
    }

    [Fact]
    public void A_host_peer_with_a_bad_CONNECT_line_is_closed()
    {
        VsockTestGuest g = Guest();
        Socket host = HostConnect("HELLO 12\n");

        Assert.Empty(g.Poll());
        Assert.True(SeesClose(host));
        Assert.Equal(0, g.Device.ConnectionCount);
    }

    [Fact]
    public void A_device_reset_closes_every_host_socket()
    {
        VsockTestGuest g = Guest();
        Socket host = Own(g.ConnectToHost(HostListener(5000), 5000, 40000));

        g.Driver.Write(VmmSharp.Devices.Virtio.Mmio.VirtioMmioRegisters.Status, 0);

        Assert.True(SeesClose(host));
        Assert.Equal(0, g.Device.ConnectionCount);
    }
    [Fact]
    public void On_the_event_loop_host_bytes_reach_the_guest_with_nobody_polling()
    {
        VsockTestGuest g = Guest();
        using var loop = new EventLoop("vmm-vsock-test");
        loop.AddReadable(g.Device.Backend, g.Device.OnBackendReadable);
        loop.Start();
        Socket host = HostConnect("CONNECT 5\n");
        VsockHeader request = WaitForPackets(g, 1)[0].Header;
        Assert.Equal(VsockOp.Request, request.Op);
        g.Send(Header(VsockOp.Response, 5, request.SrcPort));
        Assert.Equal($"OK {request.SrcPort}", ReadLine(host));

        host.Send("from the host"u8.ToArray());

        (VsockHeader h, byte[] payload) = WaitForPackets(g, 1)[0];
        Assert.Equal(VsockOp.Rw, h.Op);
        Assert.Equal("from the host", Encoding.ASCII.GetString(payload));
        Assert.True(loop.Stop(TimeSpan.FromSeconds(5)));
    }

    /// <summary>Waits (10 s at most) for <paramref name="count"/> packets that another thread puts in the receive ring.</summary>
    private static List<(VsockHeader Header, byte[] Payload)> WaitForPackets(VsockTestGuest g, int count)
    {
        var got = new List<(VsockHeader Header, byte[] Payload)>();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (got.Count < count && watch.Elapsed < TimeSpan.FromSeconds(10))
        {
            got.AddRange(g.Received());
            Thread.Sleep(got.Count < count ? 5 : 0);
        }
        Assert.True(got.Count >= count, $"{got.Count} of {count} packets within 10 s");
        return got;
    }
    [Fact]
    public void Moving_bytes_both_ways_allocates_nothing_on_the_device_path()
    {
        var g = new VsockTestGuest(Uds, irq: new NullLine());
        _owned.Add(g);
        g.PostRx(32);
        Socket host = Own(g.ConnectToHost(HostListener(5000), 5000, 40000));
        byte[] chunk = new byte[1024], into = new byte[1024];
        long allocated = 0;
        for (int round = 0; round < 32; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            g.Send(Header(VsockOp.Rw, 40000, 5000, len: 1024, fwdCnt: (uint)(round * 1024)), chunk); // guest to host
            long mid = GC.GetAllocatedBytesForCurrentThread();
            Assert.Equal(1024, host.Receive(into));
            host.Send(chunk);
            long mid2 = GC.GetAllocatedBytesForCurrentThread();
            g.Device.OnBackendReadable(); // host to guest
            g.PostRx(1);
            long after = GC.GetAllocatedBytesForCurrentThread();
            if (round > 0)
            {
                allocated += (mid - before) + (after - mid2); // round 0 warms up (JIT, first-call paths)
            }
        }

        Assert.Equal(32 * 1024, g.Device.BytesToHost);
        Assert.Equal(32 * 1024, g.Device.BytesToGuest);
        Assert.Equal(0, allocated);
    }

    private sealed class NullLine : VmmSharp.Devices.IIrqLine
    {
        public void Set(bool level)
        {
        }
    }
    [Fact]
    public void A_restored_device_has_no_connections_and_tells_the_guest_with_a_TRANSPORT_RESET_event()
    {
        VsockTestGuest g = Guest();
        g.PostEvent();
        Own(g.ConnectToHost(HostListener(5000), 5000, 40000));
        Assert.Equal(0, g.EventUsedIdx); // no event while running
        byte[] state = StateRoundTrip.Save(g.Device);

        using var restored = new VirtioVsock(Cid, Path.Combine(_dir, "restored.sock"));
        StateRoundTrip.Restore(restored, state, "vsock");
        restored.BindRestored(g.Memory, new NullInterrupt(), "vsock");

        Assert.True(restored.IsActive);
        Assert.Equal(0, restored.ConnectionCount);
        Assert.Equal(1, g.EventUsedIdx);
        Assert.Equal(0u, g.Memory.Read<uint>(EventBuffer)); // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
    }

    [Fact]
    public void A_paused_device_leaves_host_bytes_in_the_socket_until_it_resumes()
    {
        VsockTestGuest g = Guest();
        Socket host = Own(g.ConnectToHost(HostListener(5000), 5000, 40000));
        g.Device.Pause();

        host.Send("while paused"u8.ToArray());
        Assert.Empty(g.Poll());

        g.Device.Resume();
        Assert.Equal("while paused", Encoding.ASCII.GetString(g.Received().Single().Payload));
    }

    private sealed class NullInterrupt : VmmSharp.Devices.Virtio.IVirtioInterrupt
    {
        public void SignalUsedBuffers()
        {
        }

        public void SignalConfigChange()
        {
        }
    }
}
