using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Memory;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>The driver's side of a split virtqueue, written by hand into real guest memory.</summary>
internal sealed class TestRing
{
    public const ulong Desc = 0x1000, Avail = 0x2000, Used = 0x3000, Data = 0x10000;

    private readonly ulong _desc = Desc, _avail = Avail, _used = Used;
    private ushort _availIdx;

    public TestRing(GuestMemory memory, ushort size = 16, ulong features = VirtioFeatures.Common)
        : this(memory, new Virtqueue(size), features)
    {
    }

    public TestRing(GuestMemory memory, Virtqueue queue, ulong features = VirtioFeatures.Common, bool activate = true)
    {
        Memory = memory;
        Queue = queue;
        Size = queue.Size;
        Configure(queue);
        if (activate)
        {
            Assert.True(queue.TryActivate(memory, features, out string? error), error);
        }
    }

    /// <summary>The driver's side of <paramref name="queue"/>, whose rings the driver placed at the given addresses (through the transport).</summary>
    public TestRing(GuestMemory memory, Virtqueue queue, ulong desc, ulong avail, ulong used)
    {
        Memory = memory;
        Queue = queue;
        Size = queue.Size;
        (_desc, _avail, _used) = (desc, avail, used);
    }

    public GuestMemory Memory { get; }

    public Virtqueue Queue { get; }

    public ushort Size { get; }

    public ushort UsedIdx => Memory.Read<ushort>(_used + 2);

    /// <summary>Guest memory with a hole: RAM at [0, 1 MiB) and [2 MiB, 3 MiB).</summary>
    public static GuestMemory MemoryWithHole() => new(new GuestRegionSpec(0, 1 << 20), new GuestRegionSpec(2 << 20, 1 << 20));

    public static void Configure(Virtqueue queue)
    {
        queue.DescriptorTable = Desc;
        queue.DriverArea = Avail;
        queue.DeviceArea = Used;
        queue.Ready = true;
    }

    public void SetDescriptor(int index, ulong address, uint length, ushort flags = 0, ushort next = 0)
        => WriteDescriptor(_desc, index, address, length, flags, next);

    public void WriteDescriptor(ulong table, int index, ulong address, uint length, ushort flags = 0, ushort next = 0)
        => Memory.Write(table + ((ulong)index * 16), new VirtqDescriptor { Address = address, Length = length, Flags = flags, Next = next });

    public void Offer(ushort head)
    {
        Memory.Write(_avail + 4 + (2 * (ulong)(_availIdx % Size)), head);
        _availIdx++;
        Memory.Write(_avail + 2, _availIdx);
    }

    public void SetAvailIndex(ushort index) => Memory.Write(_avail + 2, _availIdx = index);

    public (uint Id, uint Length) UsedElement(int i)
    {
        ulong e = _used + 4 + (8 * (ulong)(i % Size));
        return (Memory.Read<uint>(e), Memory.Read<uint>(e + 4));
    }

    /// <summary>A copy of every byte of guest RAM, to show a failed request changed nothing.</summary>
    public byte[] Snapshot()
    {
        var all = new List<byte>();
        foreach (GuestRegion r in Memory.Regions)
        {
            byte[] bytes = new byte[r.Size];
            Memory.Read(r.GuestAddress, bytes);
            all.AddRange(bytes);
        }
        return [.. all];
    }
}
