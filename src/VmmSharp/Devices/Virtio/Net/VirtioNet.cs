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
/// one receive and one transmit queue, a MAC address, no offloads (none is offered, so the TAP is told none:
/// every frame crosses whole and checksummed).
/// </summary>
/// <remarks>
/// Frames go between the guest's buffers and the TAP with <c>readv</c>/<c>writev</c> straight on guest memory, the
/// 12-byte <c>virtio_net_hdr_v1</c> included (the TAP's vnet header has the same layout). Transmit runs on a queue
/// notification; receive when the TAP becomes readable (<see cref="OnBackendReadable"/>, which the machine subscribes
/// to its event loop with <see cref="Backend"/>) and when the guest posts receive buffers. A frame with no receive
/// buffer waits in the TAP; a frame the TAP cannot take (its queue full) is dropped and counted.
/// </remarks>
public sealed unsafe class VirtioNet : VirtioDevice
{
    /// <summary>VIRTIO_NET_F_MAC.</summary>
    public const ulong FeatureMac = 1UL << 5;

    /// <summary>Each queue's size.</summary>
    public const ushort QueueSize = 256;

    /// <summary>The header every frame carries with VIRTIO_F_VERSION_1.</summary>
    public const int HeaderSize = 12;

    private const int ReceiveQueue = 0, TransmitQueue = 1;
    private const int MaxIoVecs = QueueSize;

    private readonly SafeFileDescriptor _tap;
    private readonly byte[] _config = new byte[8];
    private readonly DescriptorChain _txChain = new(QueueSize);
    private readonly DescriptorChain _rxChain = new(QueueSize);
    private readonly Func<DescriptorChain, uint> _transmit;
    private readonly Libc.IoVec* _iov;

    /// <summary>Attaches to (or creates) the TAP interface <paramref name="tapName"/>.</summary>
    /// <param name="tapName">The interface name, at most 15 bytes.</param>
    /// <param name="mac">The guest's MAC address (6 bytes).</param>
    /// <param name="logger">Receives guest errors; null for none.</param>
    /// <exception cref="IOException">The TAP cannot be opened; the message names it and says why.</exception>
    public VirtioNet(string tapName, ReadOnlySpan<byte> mac, ILogger? logger = null)
        : base(VirtioDeviceType.Net, FeatureMac, [QueueSize, QueueSize], logger)
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

    /// <summary>Frames dropped because the TAP would not take them.</summary>
    public long FramesDropped { get; private set; }

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

    private uint Transmit(DescriptorChain chain)
    {
        int n = Gather(chain.Readable, forWrite: false);
        if (n < 0 || chain.ReadableLength <= HeaderSize)
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

    private void Receive()
    {
        Virtqueue q = Queues[ReceiveQueue];
        bool used = false;
        while (true)
        {
            QueuePop pop = q.TryPop(_rxChain);
            if (pop == QueuePop.Error)
            {
                Fail($"queue {ReceiveQueue}: {q.Error}");
                return;
            }
            if (pop == QueuePop.Empty)
            {
                if (q.ArmNotification())
                {
                    continue;
                }
                break;
            }
            int n = Gather(_rxChain.Writable, forWrite: true);
            if (n <= 0 || _rxChain.Writable[0].Length < HeaderSize)
            {
                Fail($"receive buffer at descriptor {_rxChain.Head} has no room for the {HeaderSize}-byte header in its first part");
                return;
            }
            nint got = Libc.Readv(_tap, _iov, n);
            if (got <= 0)
            {
                q.Unpop(); // no frame waiting: the buffer stays for the next one
                break;
            }
            // One buffer per frame (no VIRTIO_NET_F_MRG_RXBUF): num_buffers is 1.
            Memory.TryWrite(_rxChain.Writable[0].Address + 10, [1, 0]);
            if (!q.TryPushUsed(_rxChain.Head, (uint)got))
            {
                Fail($"queue {ReceiveQueue}: {q.Error}");
                return;
            }
            FramesReceived++;
            used = true;
        }
        if (used && q.NeedsInterrupt())
        {
            Interrupt.SignalUsedBuffers();
        }
    }

    /// <summary>Fills the iovec array with the host spans of <paramref name="segments"/>; -1 if they do not fit.</summary>
    private int Gather(ReadOnlySpan<ChainSegment> segments, bool forWrite)
    {
        int n = 0;
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
