using System.Numerics;
using VmmSharp.Memory;

namespace VmmSharp.Devices.Virtio.Queues;

/// <summary>
/// The device side of a split virtqueue (virtio 1.2 §2.7): the descriptor table, the driver's available ring and
/// the device's used ring, in guest memory, with <c>VIRTIO_RING_F_EVENT_IDX</c> and
/// <c>VIRTIO_RING_F_INDIRECT_DESC</c>. Transport-neutral: a transport sets <see cref="Size"/>, the three addresses
/// and <see cref="Ready"/> from the guest's registers; the device pops chains and pushes used entries.
/// </summary>
/// <remarks>
/// <para>The guest is hostile. Every ring is checked against guest memory when the queue is activated, every
/// descriptor's buffer when it is popped; a head or next index out of range, a chain longer than the queue (a
/// loop), an indirect table inside an indirect table, an indirect table of the wrong size, buffers whose lengths add
/// up past 4 GiB, a readable buffer after a writable one, or an available index that moved by more than the queue
/// size make <see cref="TryPop"/> return <see cref="QueuePop.Error"/> with <see cref="Error"/> saying which. Nothing
/// outside guest memory is read or written, and nothing is allocated per chain.</para>
/// <para>Not thread-safe: one thread at a time (the device's) pops and pushes.</para>
/// </remarks>
public sealed partial class Virtqueue
{
    /// <summary>The largest queue size the split ring format allows.</summary>
    public const ushort MaxQueueSize = 32768;

    private const ushort AvailFlagNoInterrupt = 1;

    private GuestMemory? _memory;
    private ushort _nextAvail;
    private ushort _nextUsed;
    private ushort _signalledUsed;

    /// <summary>Creates a queue of at most <paramref name="maxSize"/> entries (a power of two).</summary>
    public Virtqueue(ushort maxSize)
    {
        if (maxSize == 0 || maxSize > MaxQueueSize || !BitOperations.IsPow2(maxSize))
        {
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "a split queue's size is a power of two from 1 to 32768");
        }
        MaxSize = maxSize;
        Size = maxSize;
    }

    /// <summary>The largest size the device offers (virtio-mmio QueueNumMax).</summary>
    public ushort MaxSize { get; }

    /// <summary>The size the driver chose (QueueNum).</summary>
    public ushort Size { get; set; }

    /// <summary>The descriptor table's guest-physical address (QueueDesc).</summary>
    public ulong DescriptorTable { get; set; }

    /// <summary>The available ring's guest-physical address (QueueDriver).</summary>
    public ulong DriverArea { get; set; }

    /// <summary>The used ring's guest-physical address (QueueDevice).</summary>
    public ulong DeviceArea { get; set; }

    /// <summary>Whether the driver marked the queue ready (QueueReady).</summary>
    public bool Ready { get; set; }

    /// <summary>Whether the queue is activated and may be used.</summary>
    public bool IsActive => _memory is not null;

    /// <summary>Whether <c>VIRTIO_RING_F_EVENT_IDX</c> was negotiated.</summary>
    public bool EventIdx { get; private set; }

    /// <summary>Whether <c>VIRTIO_RING_F_INDIRECT_DESC</c> was negotiated.</summary>
    public bool IndirectDescriptors { get; private set; }

    /// <summary>The first rule the guest broke on this queue since it was activated; null while none.</summary>
    public string? Error { get; private set; }

    /// <summary>The next available-ring entry the device will take.</summary>
    public ushort NextAvail => _nextAvail;

    /// <summary>The next used-ring entry the device will fill.</summary>
    public ushort NextUsed => _nextUsed;

    /// <summary>Forgets the driver's configuration and the ring state, as a device reset does.</summary>
    public void Reset()
    {
        _memory = null;
        Size = MaxSize;
        DescriptorTable = DriverArea = DeviceArea = 0;
        Ready = false;
        EventIdx = IndirectDescriptors = false;
        Error = null;
        _nextAvail = _nextUsed = _signalledUsed = 0;
        _restoredActive = false;
    }

    /// <summary>
    /// Checks the driver's configuration (size, alignment, rings inside <paramref name="memory"/>) and starts using
    /// the rings with the negotiated <paramref name="features"/>. Returns false, with the reason in
    /// <paramref name="error"/>, if the configuration is unusable.
    /// </summary>
    public bool TryActivate(GuestMemory memory, ulong features, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(memory);
        error = CheckConfiguration(memory);
        if (error is not null)
        {
            return false;
        }
        EventIdx = (features & VirtioFeatures.RingEventIdx) != 0;
        IndirectDescriptors = (features & VirtioFeatures.RingIndirectDesc) != 0;
        _nextAvail = _nextUsed = _signalledUsed = 0;
        Error = null;
        _memory = memory;
        return true;
    }

    /// <summary>Why the driver's configuration (size, alignment, rings inside <paramref name="memory"/>) is unusable; null if it is usable.</summary>
    private string? CheckConfiguration(GuestMemory memory)
    {
        return Size == 0 || Size > MaxSize || !BitOperations.IsPow2(Size)
            ? $"queue size {Size} is not a power of two from 1 to {MaxSize}"
            : DescriptorTable % 16 != 0 || DriverArea % 2 != 0 || DeviceArea % 4 != 0
            ? $"rings misaligned (descriptors 0x{DescriptorTable:x}, driver area 0x{DriverArea:x}, device area 0x{DeviceArea:x})"
            : !memory.Contains(DescriptorTable, (ulong)Size * VirtqDescriptor.Size)
            ? $"descriptor table at 0x{DescriptorTable:x} of {Size} entries is outside guest memory"
            : !memory.Contains(DriverArea, 6 + (2 * (ulong)Size))
            ? $"available ring at 0x{DriverArea:x} of {Size} entries is outside guest memory"
            : !memory.Contains(DeviceArea, 6 + (8 * (ulong)Size))
            ? $"used ring at 0x{DeviceArea:x} of {Size} entries is outside guest memory"
            : null;
    }

    /// <summary>
    /// Takes the next available chain into <paramref name="chain"/>, checking every descriptor.
    /// </summary>
    /// <exception cref="InvalidOperationException">The queue is not active.</exception>
    public QueuePop TryPop(DescriptorChain chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        GuestMemory memory = _memory ?? throw new InvalidOperationException("the queue is not active");
        if (Error is not null)
        {
            return QueuePop.Error;
        }
        if (!memory.TryRead(DriverArea + 2, out ushort availIdx))
        {
            return Fail($"available ring at 0x{DriverArea:x} became unreadable");
        }
        ushort pending = (ushort)(availIdx - _nextAvail);
        if (pending == 0)
        {
            return QueuePop.Empty;
        }
        if (pending > Size)
        {
            return Fail($"available index {availIdx} is {pending} entries ahead of the device's {_nextAvail}, more than the queue size {Size}");
        }
        // The ring entry is read after the index that published it.
        Interlocked.MemoryBarrier();
        if (!memory.TryRead(DriverArea + 4 + (2 * (ulong)(_nextAvail % Size)), out ushort head))
        {
            return Fail($"available ring at 0x{DriverArea:x} became unreadable");
        }
        if (ParseChain(memory, head, chain) is { } error)
        {
            return Fail(error);
        }
        _nextAvail++;
        return QueuePop.Chain;
    }

    /// <summary>
    /// Puts the chain <see cref="TryPop"/> took last back into the available ring, untouched: for a device that found
    /// it has nothing to put in it after all (a network card whose backend had no packet).
    /// </summary>
    public void Unpop() => Unpop(1);

    /// <summary>Puts the last <paramref name="count"/> chains <see cref="TryPop"/> took back, untouched (none of them pushed since).</summary>
    public void Unpop(int count)
    {
        if (_memory is null || Error is not null)
        {
            return;
        }
        _nextAvail -= (ushort)count;
    }

    /// <summary>
    /// Returns chain <paramref name="head"/> to the driver with <paramref name="written"/> bytes written into it.
    /// False (and the queue broken) if the used ring cannot be written.
    /// </summary>
    public bool TryPushUsed(ushort head, uint written)
    {
        GuestMemory memory = _memory ?? throw new InvalidOperationException("the queue is not active");
        ulong element = DeviceArea + 4 + (8 * (ulong)(_nextUsed % Size));
        if (!memory.TryWrite(element, (uint)head) || !memory.TryWrite(element + 4, written))
        {
            Fail($"used ring at 0x{DeviceArea:x} is not writable");
            return false;
        }
        _nextUsed++;
        // The element is visible before the index that publishes it.
        Interlocked.MemoryBarrier();
        if (!memory.TryWrite(DeviceArea + 2, _nextUsed))
        {
            Fail($"used ring at 0x{DeviceArea:x} is not writable");
            return false;
        }
        return true;
    }

    /// <summary>
    /// Whether the driver wants an interrupt for the used entries pushed since the last call: always unless it
    /// suppressed them (<c>VIRTQ_AVAIL_F_NO_INTERRUPT</c>, or <c>used_event</c> with EVENT_IDX).
    /// </summary>
    public bool NeedsInterrupt()
    {
        GuestMemory memory = _memory ?? throw new InvalidOperationException("the queue is not active");
        ushort now = _nextUsed, before = _signalledUsed;
        if (now == before)
        {
            return false;
        }
        _signalledUsed = now;
        // The used index is published before the driver's suppression field is read (a store-load order).
        Interlocked.MemoryBarrier();
        if (EventIdx)
        {
            if (!memory.TryRead(DriverArea + 4 + (2 * (ulong)Size), out ushort usedEvent))
            {
                return true;
            }
            return (ushort)(now - usedEvent - 1) < (ushort)(now - before);
        }
        return !memory.TryRead(DriverArea, out ushort flags) || (flags & AvailFlagNoInterrupt) == 0;
    }

    /// <summary>
    /// After <see cref="TryPop"/> found the queue empty: asks the driver to notify for the next buffer (with EVENT_IDX,
    /// by writing <c>avail_event</c>) and returns true if buffers arrived meanwhile, so the caller pops again
    /// instead of waiting for a notification that will not come.
    /// </summary>
    public bool ArmNotification()
    {
        GuestMemory memory = _memory ?? throw new InvalidOperationException("the queue is not active");
        if (!EventIdx || Error is not null)
        {
            return false;
        }
        if (!memory.TryWrite(DeviceArea + 4 + (8 * (ulong)Size), _nextAvail))
        {
            Fail($"used ring at 0x{DeviceArea:x} is not writable");
            return false;
        }
        Interlocked.MemoryBarrier();
        return memory.TryRead(DriverArea + 2, out ushort availIdx) && availIdx != _nextAvail;
    }

    /// <summary>
    /// For a device that popped <paramref name="pending"/> chains, found them too few for its next request and put them
    /// back with <see cref="Unpop(int)"/>: asks the driver to notify once it makes more available than those (with
    /// EVENT_IDX, by writing <c>avail_event</c> past them) and returns true if more arrived meanwhile.
    /// </summary>
    public bool ArmNotification(ushort pending)
    {
        GuestMemory memory = _memory ?? throw new InvalidOperationException("the queue is not active");
        if (Error is not null)
        {
            return false;
        }
        if (EventIdx && !memory.TryWrite(DeviceArea + 4 + (8 * (ulong)Size), (ushort)(_nextAvail + pending)))
        {
            Fail($"used ring at 0x{DeviceArea:x} is not writable");
            return false;
        }
        Interlocked.MemoryBarrier();
        return memory.TryRead(DriverArea + 2, out ushort availIdx) && (ushort)(availIdx - _nextAvail) > pending;
    }

    private QueuePop Fail(string error)
    {
        Error ??= error;
        return QueuePop.Error;
    }

    private string? ParseChain(GuestMemory memory, ushort head, DescriptorChain chain)
    {
        chain.Begin(head);
        ushort index = head;
        for (int steps = 1; ; steps++)
        {
            if (index >= Size)
            {
                return $"descriptor index {index} is out of range (queue size {Size})";
            }
            if (steps > Size)
            {
                return $"chain from head {head} is longer than the queue size {Size} (a loop?)";
            }
            if (!memory.TryRead(DescriptorTable + ((ulong)index * VirtqDescriptor.Size), out VirtqDescriptor d))
            {
                return $"descriptor table at 0x{DescriptorTable:x} became unreadable";
            }
            if ((d.Flags & VirtqDescriptor.FlagIndirect) != 0)
            {
                return ParseIndirect(memory, d, chain);
            }
            if (Add(memory, d, chain) is { } error)
            {
                return error;
            }
            if ((d.Flags & VirtqDescriptor.FlagNext) == 0)
            {
                return null;
            }
            index = d.Next;
        }
    }

    private string? ParseIndirect(GuestMemory memory, in VirtqDescriptor table, DescriptorChain chain)
    {
        if (!IndirectDescriptors)
        {
            return "indirect descriptor, but VIRTIO_RING_F_INDIRECT_DESC was not negotiated";
        }
        if ((table.Flags & VirtqDescriptor.FlagNext) != 0)
        {
            return "indirect descriptor with NEXT set";
        }
        if (table.Length == 0 || table.Length % VirtqDescriptor.Size != 0)
        {
            return $"indirect table of {table.Length} bytes is not a whole number of descriptors";
        }
        uint count = table.Length / VirtqDescriptor.Size;
        if (count > (uint)(chain.Capacity - chain.Count))
        {
            return $"indirect table of {count} descriptors is longer than the {chain.Capacity - chain.Count} the chain has room for";
        }
        if (!memory.Contains(table.Address, table.Length))
        {
            return $"indirect table at 0x{table.Address:x} of {table.Length} bytes is outside guest memory";
        }
        uint index = 0;
        for (uint steps = 1; ; steps++)
        {
            if (steps > count)
            {
                return $"indirect chain is longer than its table of {count} descriptors (a loop?)";
            }
            if (!memory.TryRead(table.Address + ((ulong)index * VirtqDescriptor.Size), out VirtqDescriptor d))
            {
                return $"indirect table at 0x{table.Address:x} became unreadable";
            }
            if ((d.Flags & VirtqDescriptor.FlagIndirect) != 0)
            {
                return "indirect descriptor inside an indirect table";
            }
            if (Add(memory, d, chain) is { } error)
            {
                return error;
            }
            if ((d.Flags & VirtqDescriptor.FlagNext) == 0)
            {
                return null;
            }
            index = d.Next;
            if (index >= count)
            {
                return $"indirect descriptor index {index} is out of range (table of {count})";
            }
        }
    }

    private static string? Add(GuestMemory memory, in VirtqDescriptor d, DescriptorChain chain)
    {
        if (!memory.Contains(d.Address, d.Length))
        {
            return $"buffer at 0x{d.Address:x} of {d.Length} bytes is outside guest memory";
        }
        if (chain.ReadableLength + chain.WritableLength + d.Length > uint.MaxValue)
        {
            return "the chain's buffers add up to more than 4 GiB";
        }
        bool writable = (d.Flags & VirtqDescriptor.FlagWrite) != 0;
        if (chain.Count == chain.Capacity)
        {
            return $"chain has more than {chain.Capacity} buffers";
        }
        if (!chain.TryAdd(new ChainSegment(d.Address, d.Length, writable)))
        {
            return "a device-readable buffer follows a device-writable one";
        }
        return null;
    }
}
