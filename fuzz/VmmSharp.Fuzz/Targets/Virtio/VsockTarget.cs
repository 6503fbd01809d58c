using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Vsock;
using VmmSharp.Memory;

namespace VmmSharp.Fuzz.Targets.Virtio;

/// <summary>
/// virtio-vsock's packet handling, as a hostile driver transmits: every header field, split or whole buffers, RW
/// payloads, with host peers on the other side. Input: byte 0 the receive buffers (low 4 bits: how many, 0-15; high 4
/// bits: their size, 16 + n × 512 bytes, so some cannot hold a header), then packets, each a control byte (bit 0:
/// header and payload in separate descriptors; bit 1: src_cid forced to the guest's; bit 2: dst_cid forced to 2;
/// bit 3: the host peers write the payload to their sockets; bit 4: a host peer connects and sends a CONNECT line
/// for the header's dst_port; bit 5: type forced to STREAM), 2 bytes of payload length (mod 4097), the 44-byte header
/// and the payload. A Unix socket listens on host port 1 (SOCKET_1). Invariants: nothing escapes; the device writes
/// guest memory only in the receive buffers and the used rings; every packet it puts in a receive buffer fits it,
/// comes from cid 2 to the guest's cid with a known op and type STREAM and len the used length less the header;
/// the connections stay within their bound.
/// </summary>
internal sealed class VsockTarget : IFuzzTarget
{
    private const ulong GuestCid = 3;
    private const int Ram = 1 << 20;
    private const ushort Size = 16;
    private const ulong RxDesc = 0x1000, RxAvail = 0x2000, RxUsed = 0x3000;
    private const ulong TxDesc = 0x4000, TxAvail = 0x5000, TxUsed = 0x6000;
    private const ulong EvDesc = 0x7000, EvAvail = 0x8000, EvUsed = 0x9000;
    private const ulong RxBuffers = 0x10000, RxStride = 0x2000, TxHeader = 0x40000, TxPayload = 0x41000;
    private const int MaxConnections = 8;

    private static State? s_state;

    public string Name => "vsock";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 1)
        {
            return;
        }
        // Made on the first input, not in the constructor: instrumented library code must not run before the fork server starts.
        State st = s_state ??= new State();
        st.Run(input);
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        // Eight 528-byte receive buffers; a REQUEST to the listening port 1, RW "hello", CREDIT_REQUEST, SHUTDOWN, RST.
        var seed = new List<byte> { 0x18 };
        Packet(seed, 0x27, VsockOp.Request, 1);
        Packet(seed, 0x2f, VsockOp.Rw, 1, "hello"u8);
        Packet(seed, 0x27, VsockOp.CreditRequest, 1);
        Packet(seed, 0x27, VsockOp.Shutdown, 1, flags: 3);
        Packet(seed, 0x27, VsockOp.Rst, 1);
        yield return ("guest-connect.bin", [.. seed]);

        var host = new List<byte> { 0x18 };
        Packet(host, 0x37, VsockOp.CreditUpdate, 77); // a host peer sends CONNECT 77: the device sends a REQUEST
        Packet(host, 0x27, VsockOp.Response, 77, srcPort: 77, dstPort: 1u << 30);
        Packet(host, 0x2f, VsockOp.Rw, 77, "data"u8, srcPort: 77, dstPort: 1u << 30);
        yield return ("host-connect.bin", [.. host]);

        var bad = new List<byte> { 0x01 };
        Packet(bad, 0x00, 99, 5, "xyz"u8);
        Packet(bad, 0x27, VsockOp.Rw, 1, new byte[100]);
        yield return ("malformed.bin", [.. bad]);
    }

    private static void Packet(List<byte> into, byte control, ushort op, uint port, ReadOnlySpan<byte> payload = default, uint flags = 0, uint? srcPort = null, uint? dstPort = null)
    {
        into.Add(control);
        into.Add((byte)payload.Length);
        into.Add((byte)(payload.Length >> 8));
        var h = new VsockHeader
        {
            SrcCid = GuestCid,
            DstCid = VirtioVsock.HostCid,
            SrcPort = srcPort ?? 1000,
            DstPort = dstPort ?? port,
            Len = (uint)payload.Length,
            Type = VsockOp.TypeStream,
            Op = op,
            Flags = flags,
            BufAlloc = 4096,
        };
        into.AddRange(MemoryMarshal.AsBytes(new ReadOnlySpan<VsockHeader>(in h)).ToArray());
        into.AddRange(payload.ToArray());
    }

    /// <summary>The device and its host side, made once per process (a Unix socket each) and reset for every input.</summary>
    private sealed class State : IDisposable
    {
        private readonly GuestMemory _memory = new(new GuestRegionSpec(0, Ram));
        private readonly VirtioVsock _device;
        private readonly Socket _listener;
        private readonly string _path;
        private readonly byte[] _before = new byte[Ram];
        private readonly byte[] _after = new byte[Ram];
        private readonly List<Socket> _peers = [];
        private readonly Interrupts _interrupts = new();

        public State()
        {
            _path = Path.Combine(Path.GetTempPath(), $"vmmsharp-fuzz-vsock-{Environment.ProcessId}.sock");
            _device = new VirtioVsock(GuestCid, _path, maxConnections: MaxConnections);
            File.Delete($"{_path}_1");
            _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
            _listener.Bind(new UnixDomainSocketEndPoint($"{_path}_1"));
            _listener.Listen(64);
        }

        public void Dispose()
        {
            _device.Dispose();
            _listener.Dispose();
            _memory.Dispose();
        }

        public void Run(ReadOnlySpan<byte> input)
        {
            _device.Reset();
            foreach (Socket p in _peers)
            {
                p.Dispose();
            }
            _peers.Clear();
            _memory.Fill(0, Ram, 0);

            int rxCount = input[0] & 0xF;
            uint rxLength = 16 + ((uint)(input[0] >> 4) * 512);
            for (int i = 0; i < rxCount; i++)
            {
                Descriptor(RxDesc, i, RxBuffers + ((ulong)i * RxStride), rxLength, 2);
                _memory.Write(RxAvail + 4 + (2 * (ulong)i), (ushort)i);
            }
            _memory.Write(RxAvail + 2, (ushort)rxCount);
            Configure(0, RxDesc, RxAvail, RxUsed);
            Configure(1, TxDesc, TxAvail, TxUsed);
            Configure(2, EvDesc, EvAvail, EvUsed);
            FuzzCheckException.Check(_device.Activate(_memory, VirtioFeatures.Common, _interrupts), $"activation refused: {_device.Failure}");
            _memory.Read(0, _before);

            ushort txIdx = 0;
            ReadOnlySpan<byte> rest = input[1..];
            while (rest.Length >= 3 + VsockHeader.Size && !_device.NeedsReset)
            {
                byte control = rest[0];
                int length = BinaryPrimitives.ReadUInt16LittleEndian(rest[1..]) % 4097;
                VsockHeader h = MemoryMarshal.Read<VsockHeader>(rest.Slice(3, VsockHeader.Size));
                rest = rest[(3 + VsockHeader.Size)..];
                ReadOnlySpan<byte> payload = rest[..Math.Min(length, rest.Length)];
                rest = rest[payload.Length..];
                h.SrcCid = (control & 2) != 0 ? GuestCid : h.SrcCid;
                h.DstCid = (control & 4) != 0 ? VirtioVsock.HostCid : h.DstCid;
                h.Type = (control & 0x20) != 0 ? VsockOp.TypeStream : h.Type;
                if ((control & 0x10) != 0)
                {
                    HostConnect(h.DstPort);
                }
                Transmit(ref txIdx, control, h, payload);
                AcceptPeers((control & 8) != 0 ? payload : default);
                _device.OnBackendReadable();
            }
            FuzzCheckException.Check(_device.ConnectionCount <= MaxConnections, $"{_device.ConnectionCount} connections, bound {MaxConnections}");
            CheckMemory(rxCount, rxLength);
        }

        private void Configure(int queue, ulong desc, ulong avail, ulong used)
        {
            var q = _device.Queues[queue];
            q.Size = Size;
            q.DescriptorTable = desc;
            q.DriverArea = avail;
            q.DeviceArea = used;
            q.Ready = true;
        }

        private void Transmit(ref ushort txIdx, byte control, in VsockHeader h, ReadOnlySpan<byte> payload)
        {
            // The harness's own writes: the tx descriptors, ring and buffers; copied into the "before" image too.
            ulong headerAt = TxHeader, payloadAt = TxPayload;
            _memory.Write(headerAt, MemoryMarshal.AsBytes(new ReadOnlySpan<VsockHeader>(in h)));
            _memory.Write(payloadAt, payload);
            int d = (txIdx % (Size / 2)) * 2;
            if ((control & 1) != 0 && payload.Length > 0)
            {
                Descriptor(TxDesc, d, headerAt, VsockHeader.Size, 1, (ushort)(d + 1));
                Descriptor(TxDesc, d + 1, payloadAt, (uint)payload.Length, 0);
            }
            else
            {
                _memory.Write(headerAt + VsockHeader.Size, payload);
                Descriptor(TxDesc, d, headerAt, VsockHeader.Size + (uint)payload.Length, 0);
            }
            _memory.Write(TxAvail + 4 + (2 * (ulong)(txIdx % Size)), (ushort)d);
            txIdx++;
            _memory.Write(TxAvail + 2, txIdx);
            _memory.Read(TxDesc, _before.AsSpan((int)TxDesc, 0x1000));
            _memory.Read(TxAvail, _before.AsSpan((int)TxAvail, 0x1000));
            _memory.Read(TxHeader, _before.AsSpan((int)TxHeader, 0x3000));
            _device.Notify(1);
        }

        private void Descriptor(ulong table, int index, ulong address, uint length, ushort flags, ushort next = 0)
        {
            Span<byte> d = stackalloc byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(d, address);
            BinaryPrimitives.WriteUInt32LittleEndian(d[8..], length);
            BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
            BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
            _memory.Write(table + ((ulong)index * 16), d);
        }

        private void HostConnect(uint port)
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _peers.Add(s);
            try
            {
                s.Connect(new UnixDomainSocketEndPoint(_path));
                s.Blocking = false;
                s.Send(System.Text.Encoding.ASCII.GetBytes($"CONNECT {port}\n"));
            }
            catch (SocketException)
            {
                // The device may have closed it at once (over the bound): a host peer's problem, not the device's.
            }
        }

        private void AcceptPeers(ReadOnlySpan<byte> write)
        {
            while (true)
            {
                Socket p;
                try
                {
                    p = _listener.Accept();
                }
                catch (SocketException)
                {
                    break; // none waiting
                }
                p.Blocking = false;
                _peers.Add(p);
            }
            byte[] scratch = new byte[8192];
            foreach (Socket p in _peers)
            {
                try
                {
                    if (write.Length > 0)
                    {
                        p.Send(write, SocketFlags.None, out _);
                    }
                    if (p.Available > 0)
                    {
                        p.Receive(scratch, SocketFlags.None, out _);
                    }
                }
                catch (ObjectDisposedException)
                {
                }
                catch (SocketException)
                {
                }
            }
        }

        private void CheckMemory(int rxCount, uint rxLength)
        {
            _memory.Read(0, _after);
            int rxUsedEnd = (int)RxUsed + 6 + (8 * Size), txUsedEnd = (int)TxUsed + 6 + (8 * Size);
            int rxBuffersEnd = (int)RxBuffers + (rxCount * (int)RxStride);
            for (int i = 0; i < Ram; i++)
            {
                bool allowed = (i >= (int)RxUsed && i < rxUsedEnd) || (i >= (int)TxUsed && i < txUsedEnd)
                    || (i >= (int)RxBuffers && i < rxBuffersEnd && (i - (int)RxBuffers) % (int)RxStride < rxLength);
                if (!allowed && _before[i] != _after[i])
                {
                    throw new FuzzCheckException($"the device wrote guest memory at 0x{i:x}, outside the receive buffers and used rings");
                }
            }
            ushort used = BinaryPrimitives.ReadUInt16LittleEndian(_after.AsSpan((int)RxUsed + 2));
            FuzzCheckException.Check(used <= rxCount, $"{used} receive buffers used of {rxCount}");
            for (int u = 0; u < used; u++)
            {
                int e = (int)RxUsed + 4 + (8 * u);
                uint id = BinaryPrimitives.ReadUInt32LittleEndian(_after.AsSpan(e));
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(_after.AsSpan(e + 4));
                FuzzCheckException.Check(id < rxCount && length >= VsockHeader.Size && length <= rxLength, $"used element {id}, {length} bytes");
                VsockHeader h = MemoryMarshal.Read<VsockHeader>(_after.AsSpan((int)(RxBuffers + (id * RxStride)), VsockHeader.Size));
                FuzzCheckException.Check(h.SrcCid == VirtioVsock.HostCid && h.DstCid == GuestCid && h.Type == VsockOp.TypeStream, "a packet to the guest with the wrong cids or type");
                FuzzCheckException.Check(h.Op is >= VsockOp.Request and <= VsockOp.CreditRequest && h.Len == length - VsockHeader.Size, $"a packet to the guest with op {h.Op}, len {h.Len} in {length} bytes");
            }
        }
    }

    private sealed class Interrupts : IVirtioInterrupt
    {
        public void SignalUsedBuffers()
        {
        }

        public void SignalConfigChange()
        {
        }
    }
}
