using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Net;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// virtio-net on a real TAP in a network namespace of the test's own, with the test playing the guest's driver
/// (<see cref="MmioDriver"/>, rings written by hand): the host side is 10.77.0.1 on the TAP, the "guest" 10.77.0.2.
/// </summary>
internal sealed class NetHarness : IDisposable
{
    public const ulong RxDesc = 0x5000, RxAvail = 0x6000, RxUsed = 0x7000, RxBuffers = 0x40000, Frame = 0x30000;
    public const int RxSlot = 2048, RxQueueSize = 64;
    public const string Tap = "vmmtap0";
    public static readonly byte[] GuestMac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    public static readonly byte[] HostMac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    public static readonly IPAddress HostIp = IPAddress.Parse("10.77.0.1"), GuestIp = IPAddress.Parse("10.77.0.2");

    private readonly List<Socket> _sockets = [];
    private ushort _rxPosted, _rxSeen;
    private int _txNext;

    public NetHarness(ulong features)
    {
        Namespace = NetNamespace.CreateOrSkip();
        try
        {
            Namespace.AddTap(Tap, "02:00:00:00:00:01", "10.77.0.1/24");
            Namespace.Ip($"neigh add 10.77.0.2 lladdr 52:54:00:12:34:56 dev {Tap}");
            Net = Namespace.Run(() => new VirtioNet(Tap, GuestMac));
            Assert.True(Namespace.WaitForCarrier(Tap, TimeSpan.FromSeconds(10)), $"the TAP never got its carrier: {Namespace.Ip($"link show {Tap}")}");
            Transport = new VirtioMmioTransport(Net, Memory, 0xd000_0000, new RecordingIrqLine());
            Driver = new MmioDriver(Transport);
            Assert.True(Driver.Negotiate(features), $"the device refused features 0x{features:x}");
            Driver.SetUpQueue(0, RxQueueSize, RxDesc, RxAvail, RxUsed);
            Driver.SetUpQueue(1, 16, TestRing.Desc, TestRing.Avail, TestRing.Used);
            Driver.DriverOk();
            Tx = new TestRing(Memory, Net.Queues[1], activate: false);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public NetNamespace Namespace { get; }

    public GuestMemory Memory { get; } = GuestMemory.WithRam(1 << 20);

    public VirtioNet Net { get; } = null!;

    public VirtioMmioTransport Transport { get; } = null!;

    public MmioDriver Driver { get; } = null!;

    public TestRing Tx { get; } = null!;

    public void Dispose()
    {
        foreach (Socket s in _sockets)
        {
            s.Dispose();
        }
        Transport?.Dispose();
        Net?.Dispose();
        Memory.Dispose();
        Namespace.Dispose();
    }

    /// <summary>Posts <paramref name="count"/> receive chains of one <paramref name="size"/>-byte buffer each, then notifies.</summary>
    public void PostRx(int count, uint size = RxSlot)
    {
        for (int i = 0; i < count; i++)
        {
            int slot = _rxPosted % RxQueueSize;
            Memory.Write(RxDesc + ((ulong)slot * 16), new D { Address = RxBuffers + ((ulong)slot * RxSlot), Length = size, Flags = D.FlagWrite });
            Memory.Write(RxAvail + 4 + ((ulong)slot * 2), (ushort)slot);
            _rxPosted++;
        }
        Memory.Write(RxAvail + 2, _rxPosted);
        Transport.OnNotifyEvent();
    }

    /// <summary>The used receive entries not seen yet: (descriptor, bytes written).</summary>
    public List<(int Slot, uint Length)> TakeUsedRx()
    {
        var got = new List<(int, uint)>();
        ushort used = Memory.Read<ushort>(RxUsed + 2);
        for (; _rxSeen != used; _rxSeen++)
        {
            ulong e = RxUsed + 4 + ((ulong)(_rxSeen % RxQueueSize) * 8);
            got.Add(((int)Memory.Read<uint>(e), Memory.Read<uint>(e + 4)));
        }
        return got;
    }

    /// <summary>The bytes of a used receive buffer.</summary>
    public byte[] RxBytes(int slot, uint length)
    {
        byte[] b = new byte[length];
        Memory.Read(RxBuffers + ((ulong)slot * RxSlot), b);
        return b;
    }

    /// <summary>Calls the TAP-readable handler (the event loop's job) until <paramref name="done"/> or 10 s.</summary>
    public bool PumpUntil(Func<bool> done, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < (timeout ?? TimeSpan.FromSeconds(10)))
        {
            Net.OnBackendReadable();
            if (done())
            {
                return true;
            }
            Thread.Sleep(10);
        }
        return false;
    }

    /// <summary>A UDP socket in the namespace bound to the host's address and <paramref name="port"/>.</summary>
    public Socket HostUdp(int port)
    {
        Socket s = Namespace.Run(() =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 5000 };
            socket.Bind(new IPEndPoint(HostIp, port));
            return socket;
        });
        _sockets.Add(s);
        return s;
    }

    /// <summary>The guest transmits <paramref name="frame"/> (header included) in one descriptor.</summary>
    public void Transmit(byte[] frame)
    {
        ulong at = Frame + ((ulong)(_txNext % 16) * 0x1000);
        Memory.Write(at, frame);
        Tx.SetDescriptor(_txNext % 16, at, (uint)frame.Length);
        Tx.Offer((ushort)(_txNext % 16));
        _txNext++;
        Transport.OnNotifyEvent();
    }

    /// <summary>
    /// A guest frame: virtio_net_hdr_v1, Ethernet to the host, IPv4 from 10.77.0.2 to 10.77.0.1, UDP from
    /// <paramref name="sourcePort"/> to <paramref name="port"/>. With <paramref name="partialChecksum"/> the UDP checksum
    /// holds only the pseudo-header's sum and the header says NEEDS_CSUM (what a driver with VIRTIO_NET_F_CSUM sends).
    /// </summary>
    public static byte[] UdpFrame(ReadOnlySpan<byte> payload, int port, bool partialChecksum, int sourcePort = 40000)
    {
        const int Eth = VirtioNet.HeaderSize, Ip = Eth + 14, Udp = Ip + 20;
        byte[] f = new byte[Udp + 8 + payload.Length];
        if (partialChecksum)
        {
            f[0] = 1; // NEEDS_CSUM
            BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(6), Udp - Eth); // csum_start, from the Ethernet header
            BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(8), 6); // csum_offset: UDP's checksum field
        }
        HostMac.CopyTo(f, Eth);
        GuestMac.CopyTo(f, Eth + 6);
        f[Eth + 12] = 0x08;
        Span<byte> ip = f.AsSpan(Ip, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + 8 + payload.Length));
        ip[8] = 64;
        ip[9] = 17;
        GuestIp.GetAddressBytes().CopyTo(ip[12..]);
        HostIp.GetAddressBytes().CopyTo(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], (ushort)~Fold(Sum(ip)));
        Span<byte> udp = f.AsSpan(Udp);
        BinaryPrimitives.WriteUInt16BigEndian(udp, (ushort)sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], (ushort)port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)(8 + payload.Length));
        payload.CopyTo(udp[8..]);
        uint pseudo = Sum(ip.Slice(12, 8)) + 17 + (uint)(8 + payload.Length);
        ushort check = partialChecksum ? Fold(pseudo) : (ushort)~Fold(pseudo + Sum(udp));
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], check == 0 && !partialChecksum ? (ushort)0xffff : check);
        return f;
    }

    private static uint Sum(ReadOnlySpan<byte> b)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < b.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(b[i..]);
        }
        if ((b.Length & 1) != 0)
        {
            sum += (uint)b[^1] << 8;
        }
        return sum;
    }

    private static ushort Fold(uint sum)
    {
        while (sum > 0xffff)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return (ushort)sum;
    }
}
