using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Interop;
using VmmSharp.State;

namespace VmmSharp.Devices.Virtio.Net;

/// <summary>
/// virtio-net (virtio 1.2 §5.1) on a host TAP device (<c>/dev/net/tun</c>, <c>IFF_TAP | IFF_NO_PI | IFF_VNET_HDR</c>):
/// one receive and one transmit queue, a MAC address, the link status (up), mergeable receive buffers, and the
/// checksum and TCP segmentation offloads, each used only as the driver negotiated it.
/// </summary>
/// <remarks>
/// <para>Frames go between the guest's buffers and the TAP with <c>readv</c>/<c>writev</c> straight on guest memory, the
/// 12-byte <c>virtio_net_hdr_v1</c> included (the TAP's vnet header has the same layout, so checksum and GSO requests
/// pass through as they are). What the TAP may hand the guest is set with <c>TUNSETOFFLOAD</c> at activation from
/// GUEST_CSUM/GUEST_TSO4/GUEST_TSO6 (none before and after); a transmitted header asking for an offload the driver
/// did not negotiate (CSUM, HOST_TSO4/6; UDP fragmentation and ECN are never offered) is dropped and counted.</para>
/// <para>Transmit runs on a queue notification; receive when the TAP becomes readable (<see cref="OnBackendReadable"/>,
/// which the machine subscribes to its event loop with <see cref="Backend"/>) and when the guest posts receive buffers.
/// A frame is read only once the posted buffers can hold the largest frame the driver may get (one chain without
/// MRG_RXBUF; with it, as many chains as that takes, <c>num_buffers</c> telling the driver how many it filled), so a
/// frame is never cut short. Until then frames wait in the TAP's own bounded queue (the host kernel drops past it):
/// the device never buffers a frame itself, allocates nothing per frame and never blocks. A frame the TAP cannot take
/// (its queue full) is dropped and counted.</para>
/// </remarks>
public sealed unsafe partial class VirtioNet : VirtioDevice
{
    /// <summary>VIRTIO_NET_F_MAC (also <see cref="VirtioNetFeatures.Mac"/>).</summary>
    public const ulong FeatureMac = VirtioNetFeatures.Mac;

    /// <summary>Each queue's size.</summary>
    public const ushort QueueSize = 256;

    /// <summary>The header every frame carries with VIRTIO_F_VERSION_1.</summary>
    public const int HeaderSize = 12;

    /// <summary>The largest frame the driver takes without GUEST_TSO: the header and a VLAN-tagged 1500-byte Ethernet frame.</summary>
    public const int MaxFrame = HeaderSize + 1518;

    /// <summary>The largest frame the driver takes with GUEST_TSO4/6: the header and a 64 KiB segment with its headers.</summary>
    public const int MaxGsoFrame = HeaderSize + 65550;

    /// <summary>VIRTIO_NET_S_LINK_UP in the configuration's status field.</summary>
    private const byte LinkUp = 1;

    private const int ReceiveQueue = 0, TransmitQueue = 1;
    private const int MaxIoVecs = QueueSize;

    private readonly SafeFileDescriptor _tap;
    private readonly byte[] _config = new byte[8];
    private readonly DescriptorChain _txChain = new(QueueSize);
    private readonly DescriptorChain _rxChain = new(QueueSize);
    private readonly Func<DescriptorChain, uint> _transmit;
    private readonly Libc.IoVec* _iov;
    private readonly ushort[] _rxHeads = new ushort[QueueSize];
    private readonly uint[] _rxRoom = new uint[QueueSize];
    private int _rxFrameLimit = MaxFrame;
    private bool _mergeable;

    /// <summary>Attaches to (or creates) the TAP interface <paramref name="tapName"/>.</summary>
    /// <param name="tapName">The interface name, at most 15 bytes.</param>
    /// <param name="mac">The guest's MAC address (6 bytes).</param>
    /// <param name="logger">Receives guest errors; null for none.</param>
    /// <exception cref="IOException">The TAP cannot be opened; the message names it and says why.</exception>
    public VirtioNet(string tapName, ReadOnlySpan<byte> mac, ILogger? logger = null)
        : base(VirtioDeviceType.Net, VirtioNetFeatures.Offered, [QueueSize, QueueSize], logger)
    {
        ArgumentNullException.ThrowIfNull(tapName);
        if (mac.Length != 6)
        {
            throw new ArgumentException($"a MAC address has 6 bytes, not {mac.Length}", nameof(mac));
        }
        if (tapName.Length == 0 || Encoding.ASCII.GetByteCount(tapName) > 15)
        {
            throw new ArgumentException($"TAP name '{tapName}' is empty or longer than 15 bytes", nameof(tapName));
        }
        TapName = tapName;
        Name = $"virtio-net ({tapName})";
        mac.CopyTo(_config);
        _config[6] = LinkUp;
        _tap = OpenTap(tapName);
        _iov = (Libc.IoVec*)NativeMemory.Alloc(MaxIoVecs, (nuint)sizeof(Libc.IoVec));
        _transmit = Transmit;
    }

    /// <summary>The TAP interface's name.</summary>
    public string TapName { get; }

    /// <summary>The TAP descriptor, for the event loop to watch (<see cref="Events.EventLoop.AddReadable"/>).</summary>
    public SafeHandle Backend => _tap;

    /// <summary>Frames sent to the TAP.</summary>
    public long FramesSent { get; private set; }

    /// <summary>Frames received from the TAP.</summary>
    public long FramesReceived { get; private set; }

    /// <summary>Transmitted frames dropped: the TAP would not take them, or their header asked for an offload not negotiated.</summary>
    public long FramesDropped { get; private set; }

    /// <summary>The TUNSETOFFLOAD flags the TAP has now (TUN_F_CSUM 1, TUN_F_TSO4 2, TUN_F_TSO6 4): what the driver negotiated to receive.</summary>
    public uint TapOffloads { get; private set; }

    /// <inheritdoc/>
    public override int ConfigSize => _config.Length;

    /// <summary>The TAP has frames: move what fits into the guest's receive buffers (on the event loop's thread).</summary>
    public void OnBackendReadable()
    {
        lock (Sync)
        {
            if (IsActive && !NeedsReset && !IsPaused && Queues[ReceiveQueue].IsActive)
            {
                Receive();
            }
        }
    }

    /// <inheritdoc/>
    protected override void ReadConfigSpace(uint offset, Span<byte> data) => _config.AsSpan((int)offset, data.Length).CopyTo(data);

    /// <inheritdoc/>
    protected override void OnNotify(int queue)
    {
        if (queue == TransmitQueue)
        {
            Drain(TransmitQueue, _txChain, _transmit);
        }
        else if (queue == ReceiveQueue)
        {
            Receive(); // new buffers: frames waiting in the TAP can come in now
        }
    }

    /// <inheritdoc/>
    protected override void OnActivate() => ApplyFeatures();

    /// <inheritdoc/>
    /// <remarks>The receive path's limits and the TAP's offloads follow from the restored driver features, as at activation.</remarks>
    protected override void OnRestored() => ApplyFeatures();

    private void ApplyFeatures()
    {
        ulong features = DriverFeatures;
        _mergeable = (features & VirtioNetFeatures.MrgRxBuf) != 0;
        _rxFrameLimit = (features & (VirtioNetFeatures.GuestTso4 | VirtioNetFeatures.GuestTso6)) != 0 ? MaxGsoFrame : MaxFrame;
        SetTapOffloads(VirtioNetFeatures.TapOffloads(features));
    }

    /// <inheritdoc/>
    protected override void OnReset()
    {
        _mergeable = false;
        _rxFrameLimit = MaxFrame;
        SetTapOffloads(0);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The MAC address, so a snapshot is not restored behind another one. No frame is held by the device: a frame
    /// waits in the TAP until a receive buffer takes it whole, so there is no pending receive state to save (frames
    /// queued in the host's TAP when the snapshot was taken are host state and stay behind).
    /// </remarks>
    protected override void SaveDeviceState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteRaw(_config.AsSpan(0, 6));
    }

    /// <inheritdoc/>
    protected override void RestoreDeviceState(ref StateReader reader, ushort version)
    {
        ReadOnlySpan<byte> mac = reader.ReadRaw(6, "mac");
        if (!mac.SequenceEqual(_config.AsSpan(0, 6)))
        {
            throw reader.Invalid("mac", Convert.ToHexString(mac), $"differs from this device's {Convert.ToHexString(_config.AsSpan(0, 6))}");
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (Sync)
            {
                _tap.Dispose();
            }
        }
        NativeMemory.Free(_iov);
        base.Dispose(disposing);
    }

    private static SafeFileDescriptor OpenTap(string name)
    {
        int fd = Libc.Open("/dev/net/tun", Libc.O_RDWR | Libc.O_CLOEXEC | Libc.O_NONBLOCK);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"TAP '{name}': cannot open /dev/net/tun: {Libc.ErrorText(errno)}");
        }
        var tap = new SafeFileDescriptor(fd);
        var request = new Libc.IfReqFlags { Flags = (short)(Libc.IFF_TAP | Libc.IFF_NO_PI | Libc.IFF_VNET_HDR) };
        Encoding.ASCII.GetBytes(name, request.Name);
        int headerSize = HeaderSize;
        string? failed = Libc.Ioctl(tap, Libc.TUNSETIFF, &request) < 0 ? "TUNSETIFF"
            : Libc.Ioctl(tap, Libc.TUNSETVNETHDRSZ, &headerSize) < 0 ? "TUNSETVNETHDRSZ"
            : Libc.Ioctl(tap, Libc.TUNSETOFFLOAD, (nuint)0) < 0 ? "TUNSETOFFLOAD"
            : null;
        if (failed is not null)
        {
            int errno = Marshal.GetLastPInvokeError();
            tap.Dispose();
            throw new IOException($"TAP '{name}': {failed}: {Libc.ErrorText(errno)}");
        }
        return tap;
    }

    /// <summary>Tells the TAP what it may hand the guest; a TAP that refuses keeps sending whole, checksummed frames.</summary>
    private void SetTapOffloads(uint flags)
    {
        if (flags != TapOffloads && Libc.Ioctl(_tap, Libc.TUNSETOFFLOAD, (nuint)flags) >= 0)
        {
            TapOffloads = flags;
        }
    }

    private uint Transmit(DescriptorChain chain)
    {
        int n = Gather(chain.Readable, forWrite: false, 0);
        if (n < 0 || chain.ReadableLength <= HeaderSize || !OffloadsNegotiated(chain.Readable[0]))
        {
            FramesDropped++;
            return 0;
        }
        if (Libc.Writev(_tap, _iov, n) < 0)
        {
            FramesDropped++;
            return 0;
        }
        FramesSent++;
        return 0;
    }

    /// <summary>Whether the header's checksum and GSO requests (its first two bytes) are ones the driver negotiated.</summary>
    private bool OffloadsNegotiated(ChainSegment first)
    {
        Span<byte> head = stackalloc byte[2];
        if (first.Length < 2 || !Memory.TryRead(first.Address, head))
        {
            return false; // the header's flags and GSO type straddle descriptors: no driver does that
        }
        ulong features = DriverFeatures;
        if ((head[0] & VirtioNetHeader.FlagNeedsCsum) != 0 && (features & VirtioNetFeatures.Csum) == 0)
        {
            return false;
        }
        return head[1] switch
        {
            VirtioNetHeader.GsoNone => true,
            VirtioNetHeader.GsoTcpV4 => (features & VirtioNetFeatures.HostTso4) != 0,
            VirtioNetHeader.GsoTcpV6 => (features & VirtioNetFeatures.HostTso6) != 0,
            _ => false, // UDP fragmentation, ECN: never offered
        };
    }

    /// <summary>Adds the host spans of <paramref name="segments"/> to the iovec array from entry <paramref name="n"/>; the new count, -1 if they do not fit.</summary>
    private int Gather(ReadOnlySpan<ChainSegment> segments, bool forWrite, int n)
    {
        foreach (ChainSegment s in segments)
        {
            ulong address = s.Address, remaining = s.Length;
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
        return n;
    }
}
