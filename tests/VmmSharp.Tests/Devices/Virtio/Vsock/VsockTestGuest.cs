using System.Net.Sockets;
using System.Runtime.InteropServices;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Vsock;
using VmmSharp.Memory;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio.Vsock;

/// <summary>
/// The guest's vsock driver, played by hand in real guest memory through the virtio-mmio registers: it posts receive
/// buffers, transmits packets and reads what the device put in its receive buffers. Its cid is <see cref="Cid"/>.
/// </summary>
internal sealed class VsockTestGuest : IDisposable
{
    public const ulong Cid = 3;
    public const ushort RingSize = 64;
    public const uint RxBufferLength = VsockHeader.Size + 4096;

    private const ulong RxDesc = 0x1000, RxAvail = 0x2000, RxUsed = 0x3000;
    private const ulong TxDesc = 0x4000, TxAvail = 0x5000, TxUsed = 0x6000;
    private const ulong EvDesc = 0x7000, EvAvail = 0x8000, EvUsed = 0x9000;
    private const ulong RxBuffers = 0x10_0000, TxBuffers = 0x20_0000;
    private const ulong TxSlot = 0x1_1000;

    /// <summary>Where <see cref="PostEvent"/> puts its event buffer.</summary>
    public const ulong EventBuffer = 0xF_0000;

    private readonly TestRing _rx, _tx, _event;
    private readonly uint[] _rxLength = new uint[RingSize];
    private ushort _nextRx, _nextTx, _seenUsed;

    public VsockTestGuest(string socketPath, int maxConnections = VirtioVsock.DefaultMaxConnections, VmmSharp.Devices.IIrqLine? irq = null)
    {
        Memory = GuestMemory.WithRam(8 << 20);
        Device = new VirtioVsock(Cid, socketPath, maxConnections: maxConnections);
        Transport = new VirtioMmioTransport(Device, Memory, 0xd000_0000, irq ?? new RecordingIrqLine());
        var driver = new MmioDriver(Transport);
        Assert.True(driver.Negotiate(VirtioFeatures.Common));
        driver.SetUpQueue(0, RingSize, RxDesc, RxAvail, RxUsed);
        driver.SetUpQueue(1, RingSize, TxDesc, TxAvail, TxUsed);
        driver.SetUpQueue(2, 16, EvDesc, EvAvail, EvUsed);
        driver.DriverOk();
        Assert.True(Device.IsActive);
        _rx = new TestRing(Memory, Device.Queues[0], RxDesc, RxAvail, RxUsed);
        _tx = new TestRing(Memory, Device.Queues[1], TxDesc, TxAvail, TxUsed);
        _event = new TestRing(Memory, Device.Queues[2], EvDesc, EvAvail, EvUsed);
        Driver = driver;
    }

    public GuestMemory Memory { get; }

    public VirtioVsock Device { get; }

    public VirtioMmioTransport Transport { get; }

    public MmioDriver Driver { get; }

    public static VsockHeader Header(ushort op, uint srcPort, uint dstPort, uint len = 0, uint bufAlloc = 64 * 1024, uint fwdCnt = 0, uint flags = 0)
        => new()
        {
            SrcCid = Cid,
            DstCid = VirtioVsock.HostCid,
            SrcPort = srcPort,
            DstPort = dstPort,
            Len = len,
            Type = VsockOp.TypeStream,
            Op = op,
            Flags = flags,
            BufAlloc = bufAlloc,
            FwdCnt = fwdCnt,
        };

    /// <summary>Posts <paramref name="count"/> receive buffers of <paramref name="length"/> bytes each, one descriptor per buffer, and notifies.</summary>
    public void PostRx(int count, uint length = RxBufferLength)
    {
        for (int i = 0; i < count; i++)
        {
            ushort d = (ushort)(_nextRx++ % RingSize);
            _rxLength[d] = length;
            _rx.SetDescriptor(d, RxBuffers + (d * 0x1_1000UL), length, D.FlagWrite);
            _rx.Offer(d);
        }
        Transport.OnNotifyEvent();
    }

    /// <summary>The event queue's used index.</summary>
    public ushort EventUsedIdx => _event.UsedIdx;

    /// <summary>Posts one 4-byte event buffer (a <c>virtio_vsock_event</c>) at <see cref="EventBuffer"/>, filled with 0xff.</summary>
    public void PostEvent()
    {
        Memory.Write(EventBuffer, uint.MaxValue);
        _event.SetDescriptor(0, EventBuffer, 4, D.FlagWrite);
        _event.Offer(0);
        Transport.OnNotifyEvent();
    }

    /// <summary>Transmits one packet (header and payload in two descriptors, as Linux 6.1 does) and notifies.</summary>
    public void Send(VsockHeader header, ReadOnlySpan<byte> payload = default, uint? headerLength = null)
    {
        ushort slot = (ushort)(_nextTx++ % (RingSize / 2));
        ulong at = TxBuffers + (slot * TxSlot);
        Memory.Write(at, MemoryMarshal.AsBytes(new ReadOnlySpan<VsockHeader>(in header)));
        Memory.Write(at + VsockHeader.Size, payload);
        ushort d = (ushort)(slot * 2);
        uint hl = headerLength ?? VsockHeader.Size;
        if (payload.Length > 0)
        {
            _tx.SetDescriptor(d, at, hl, D.FlagNext, (ushort)(d + 1));
            _tx.SetDescriptor(d + 1, at + VsockHeader.Size, (uint)payload.Length);
        }
        else
        {
            _tx.SetDescriptor(d, at, hl);
        }
        _tx.Offer(d);
        Transport.OnNotifyEvent();
    }

    /// <summary>The packets the device has put in the receive ring since the last call.</summary>
    public List<(VsockHeader Header, byte[] Payload)> Received()
    {
        var packets = new List<(VsockHeader, byte[])>();
        while (_seenUsed != _rx.UsedIdx)
        {
            (uint id, uint length) = _rx.UsedElement(_seenUsed++);
            Assert.True(id < RingSize && length >= VsockHeader.Size && length <= _rxLength[id], $"used element {id} of {length} bytes");
            ulong at = RxBuffers + (id * 0x1_1000UL);
            VsockHeader h = Memory.Read<VsockHeader>(at);
            Assert.Equal(length - VsockHeader.Size, h.Len);
            byte[] payload = new byte[h.Len];
            Memory.Read(at + VsockHeader.Size, payload);
            packets.Add((h, payload));
        }
        return packets;
    }

    /// <summary>Lets the device look at its host sockets, as the event loop would.</summary>
    public List<(VsockHeader Header, byte[] Payload)> Poll()
    {
        Device.OnBackendReadable();
        return Received();
    }

    /// <summary>The single packet received since the last call.</summary>
    public VsockHeader ReceiveOne(ushort op)
    {
        List<(VsockHeader Header, byte[] Payload)> got = Received();
        Assert.True(got.Count == 1, $"expected one packet, got {got.Count}: {string.Join(", ", got.Select(p => $"op {p.Header.Op}"))}");
        Assert.Equal(op, got[0].Header.Op);
        return got[0].Header;
    }

    /// <summary>A guest connection to host port <paramref name="port"/> (a listener at SocketPath_port accepts it): the host's end.</summary>
    public Socket ConnectToHost(Socket listener, uint port, uint guestPort, uint bufAlloc = 64 * 1024)
    {
        Send(Header(VsockOp.Request, guestPort, port, bufAlloc: bufAlloc));
        VsockHeader response = ReceiveOne(VsockOp.Response);
        Assert.Equal((port, guestPort), (response.SrcPort, response.DstPort));
        Socket host = listener.Accept();
        host.ReceiveTimeout = 10_000;
        return host;
    }

    public void Dispose()
    {
        Transport.Dispose();
        Device.Dispose();
        Memory.Dispose();
    }
}
