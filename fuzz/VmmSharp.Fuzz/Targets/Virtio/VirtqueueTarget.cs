using System.Buffers.Binary;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Memory;

namespace VmmSharp.Fuzz.Targets.Virtio;

/// <summary>
/// The split virtqueue's descriptor-chain parser, as a hostile driver feeds it. Input: byte 0 the queue size
/// (2^(b % 9)), byte 1 the features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC), then up to 64 KiB copied into guest RAM at
/// address 0, where the descriptor table (0x0), available ring (0x1000) and used ring (0x2000) are; a second RAM
/// region at [0x20000, 0x30000) leaves a hole in between. The device pops, checks each chain, and returns it used.
/// Invariants: every buffer of a popped chain lies in guest memory, readable ones first, at most the chain's capacity,
/// lengths summing below 4 GiB; the queue writes nothing but the used ring; popping ends.
/// </summary>
internal sealed class VirtqueueTarget : IFuzzTarget
{
    private const ulong Avail = 0x1000, Used = 0x2000;
    private const int Window = 0x10000;

    private static readonly GuestMemory Memory = new(new GuestRegionSpec(0, Window), new GuestRegionSpec(0x20000, 0x10000));
    private static readonly DescriptorChain Chain = new(256);
    private static readonly byte[] Before = new byte[Window];
    private static readonly byte[] After = new byte[Window];

    public string Name => "virtqueue";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 2)
        {
            return;
        }
        ushort size = (ushort)(1 << (input[0] % 9));
        ulong features = VirtioFeatures.Version1
            | ((input[1] & 1) != 0 ? VirtioFeatures.RingEventIdx : 0)
            | ((input[1] & 2) != 0 ? VirtioFeatures.RingIndirectDesc : 0);
        ReadOnlySpan<byte> image = input[2..];
        Memory.Fill(0, Window, 0);
        Memory.Fill(0x20000, 0x10000, 0);
        Memory.Write(0, image[..Math.Min(image.Length, Window)]);
        Memory.Read(0, Before);

        var queue = new Virtqueue(256) { Size = size, DescriptorTable = 0, DriverArea = Avail, DeviceArea = Used, Ready = true };
        FuzzCheckException.Check(queue.TryActivate(Memory, features, out string? error), $"rings inside RAM refused: {error}");
        for (int i = 0; i < 2 * size; i++)
        {
            QueuePop pop = queue.TryPop(Chain);
            if (pop != QueuePop.Chain)
            {
                FuzzCheckException.Check(pop == QueuePop.Empty || queue.Error is not null, "an error without a reason");
                break;
            }
            CheckChain();
            FuzzCheckException.Check(queue.TryPushUsed(Chain.Head, (uint)Math.Min(Chain.WritableLength, uint.MaxValue)), "used ring inside RAM not writable");
            queue.NeedsInterrupt();
            queue.ArmNotification();
        }

        // Nothing but the used ring (and avail_event at its end) may have changed.
        Memory.Read(0, After);
        int usedEnd = (int)Used + 6 + (8 * size);
        for (int i = 0; i < Window; i++)
        {
            if (i >= (int)Used && i < usedEnd)
            {
                continue;
            }
            FuzzCheckException.Check(Before[i] == After[i], $"the queue wrote guest memory at 0x{i:x}, outside the used ring");
        }
        FuzzCheckException.Check(BinaryPrimitives.ReadUInt16LittleEndian(After.AsSpan((int)Used + 2)) == queue.NextUsed, "used index differs from the queue's");
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        // Queue of 16, EVENT_IDX and INDIRECT: one direct chain (readable then writable) and one indirect chain.
        byte[] direct = Image(4, 3);
        Descriptor(direct, 0, 0x8000, 16, 1, 1);
        Descriptor(direct, 1, 0x8100, 512, 2, 0);
        Descriptor(direct, 2, 0x9000, 2 * 16, 4, 0);
        Descriptor(direct, 0x9000 / 16, 0x20000, 64, 1 | 2, 1);
        Descriptor(direct, (0x9000 / 16) + 1, 0x20100, 1, 2, 0);
        Offer(direct, 0, 2);
        yield return ("direct-and-indirect.bin", direct);

        byte[] loop = Image(4, 0);
        Descriptor(loop, 0, 0x8000, 16, 1, 1);
        Descriptor(loop, 1, 0x8000, 16, 1, 0);
        Offer(loop, 0);
        yield return ("loop.bin", loop);
    }

    private static byte[] Image(byte log2Size, byte features)
    {
        byte[] data = new byte[2 + 0xA000];
        data[0] = log2Size;
        data[1] = features;
        return data;
    }

    private static void Descriptor(byte[] image, int index, ulong address, uint length, ushort flags, ushort next)
    {
        Span<byte> d = image.AsSpan(2 + (index * 16), 16);
        BinaryPrimitives.WriteUInt64LittleEndian(d, address);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
    }

    private static void Offer(byte[] image, params ushort[] heads)
    {
        for (int i = 0; i < heads.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(2 + (int)Avail + 4 + (2 * i)), heads[i]);
        }
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(2 + (int)Avail + 2), (ushort)heads.Length);
    }

    private static void CheckChain()
    {
        FuzzCheckException.Check(Chain.Count >= 1 && Chain.Count <= Chain.Capacity, $"chain of {Chain.Count} buffers");
        FuzzCheckException.Check(Chain.ReadableLength + Chain.WritableLength <= uint.MaxValue, "chain longer than 4 GiB");
        bool writable = false;
        foreach (ChainSegment s in Chain.Segments)
        {
            FuzzCheckException.Check(Memory.Contains(s.Address, s.Length), $"buffer 0x{s.Address:x}+{s.Length} outside guest memory");
            FuzzCheckException.Check(!writable || s.IsWriteOnly, "a readable buffer after a writable one");
            writable |= s.IsWriteOnly;
        }
    }
}
