using Microsoft.Extensions.Logging;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Interop;

namespace VmmSharp.Devices.Virtio.Rng;

/// <summary>
/// virtio-rng (virtio 1.2 §5.4): one request queue whose writable buffers the device fills from the host's
/// <c>getrandom(2)</c>, directly in guest memory.
/// </summary>
/// <remarks>Each request gets at most <see cref="MaxBytesPerRequest"/> bytes (the spec lets the device write fewer), so a
/// guest asking for gigabytes cannot hold the event loop.</remarks>
public sealed unsafe class VirtioRng : VirtioDevice
{
    /// <summary>The most bytes one request receives.</summary>
    public const uint MaxBytesPerRequest = 64 * 1024;

    /// <summary>The request queue's size.</summary>
    public const ushort QueueSize = 256;

    private readonly DescriptorChain _chain = new(QueueSize);
    private readonly Func<DescriptorChain, uint> _fill;

    /// <summary>Creates the device.</summary>
    public VirtioRng(ILogger? logger = null)
        : base(VirtioDeviceType.Rng, 0, [QueueSize], logger)
    {
        _fill = Fill;
    }

    /// <summary>How many random bytes the device has given the guest.</summary>
    public long BytesProvided { get; private set; }

    /// <inheritdoc/>
    public override int ConfigSize => 0;

    /// <inheritdoc/>
    protected override void ReadConfigSpace(uint offset, Span<byte> data)
    {
    }

    /// <inheritdoc/>
    protected override void OnNotify(int queue) => Drain(queue, _chain, _fill);

    private uint Fill(DescriptorChain chain)
    {
        uint written = 0;
        foreach (ChainSegment s in chain.Writable)
        {
            ulong address = s.Address;
            ulong remaining = Math.Min(s.Length, MaxBytesPerRequest - written);
            while (Memory.NextSpan(ref address, ref remaining, forWrite: true, out Span<byte> span))
            {
                fixed (byte* p = span)
                {
                    int done = 0;
                    while (done < span.Length)
                    {
                        nint n = Libc.GetRandom(p + done, (nuint)(span.Length - done), 0);
                        if (n <= 0)
                        {
                            BytesProvided += written;
                            return written;
                        }
                        done += (int)n;
                        written += (uint)n;
                    }
                }
            }
            if (written >= MaxBytesPerRequest)
            {
                break;
            }
        }
        BytesProvided += written;
        return written;
    }
}
