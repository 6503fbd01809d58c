using VmmSharp.Interop;

namespace VmmSharp.Memory;

/// <summary>
/// One contiguous range of guest-physical memory, backed by an anonymous host mapping. Its
/// <see cref="GuestMemory"/> owns the mapping and alone unmaps it. Any thread may use it.
/// </summary>
public sealed class GuestRegion
{
    private readonly SafeMapping _mapping;
    private ulong[]? _hostWrites;

    internal GuestRegion(ulong guestAddress, ulong size, bool readOnly)
    {
        GuestAddress = guestAddress;
        Size = size;
        ReadOnly = readOnly;
        _mapping = SafeMapping.Anonymous((nuint)size);
    }

    internal GuestRegion(ulong guestAddress, ulong size, bool readOnly, SafeMapping mapping)
    {
        GuestAddress = guestAddress;
        Size = size;
        ReadOnly = readOnly;
        _mapping = mapping;
    }

    /// <summary>The guest-physical address of the region's first byte.</summary>
    public ulong GuestAddress { get; }

    /// <summary>The region's size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The first guest-physical address after the region.</summary>
    public ulong End => GuestAddress + Size;

    /// <summary>
    /// Whether the guest may only read the region (a ROM): KVM turns guest writes into MMIO exits,
    /// and <see cref="GuestMemory"/> refuses writes. The host fills it through <see cref="HostSpan"/>.
    /// </summary>
    public bool ReadOnly { get; }

    /// <summary>The host address of the region's first byte, for registering it with KVM.</summary>
    internal nint HostAddress => _mapping.Address;

    /// <summary>Whether <paramref name="address"/> lies in the region.</summary>
    public bool Contains(ulong address) => address >= GuestAddress && address - GuestAddress < Size;

    /// <summary>
    /// The host's view of <paramref name="length"/> bytes at <paramref name="offset"/> into the region,
    /// writable even when the region is read-only for the guest (to load a ROM image).
    /// </summary>
    public unsafe Span<byte> HostSpan(ulong offset, int length)
    {
        ObjectDisposedException.ThrowIf(_mapping.IsClosed, this);
        if (length < 0 || offset > Size || (ulong)length > Size - offset)
        {
            throw new GuestMemoryException(GuestAddress + offset, (ulong)Math.Max(length, 0),
                $"outside region [0x{GuestAddress:x}, 0x{End:x})");
        }
        return new Span<byte>((byte*)_mapping.Address + offset, length);
    }

    /// <summary>
    /// Starts logging the pages the host writes through <see cref="GuestMemory"/> (device models: used rings, DMA),
    /// which KVM's dirty log never sees; <see cref="TakeHostWrites"/> hands them out.
    /// </summary>
    internal void StartHostWriteLog() => _hostWrites ??= new ulong[((Size / GuestMemory.PageSize) + 63) / 64];

    /// <summary>Marks the pages of [<paramref name="offset"/>, +<paramref name="length"/>) written, if the log is on.</summary>
    internal void MarkHostWrite(ulong offset, ulong length)
    {
        ulong[]? log = _hostWrites;
        if (log is null || length == 0)
        {
            return;
        }
        for (ulong page = offset / GuestMemory.PageSize, last = (offset + length - 1) / GuestMemory.PageSize; page <= last; page++)
        {
            ulong bit = 1UL << (int)(page % 64);
            ref ulong word = ref log[page / 64];
            if ((Volatile.Read(ref word) & bit) == 0)
            {
                Interlocked.Or(ref word, bit); // device threads may write neighbouring pages at once
            }
        }
    }

    /// <summary>ORs the pages the host wrote since the last call into <paramref name="bitmap"/> (bit i: page i) and clears the log.</summary>
    internal void TakeHostWrites(Span<ulong> bitmap)
    {
        if (_hostWrites is not { } log)
        {
            return;
        }
        for (int i = 0; i < log.Length && i < bitmap.Length; i++)
        {
            bitmap[i] |= Interlocked.Exchange(ref log[i], 0);
        }
    }

    /// <summary>The mapping, for remapping it from a file or discarding its private pages.</summary>
    internal SafeMapping Mapping => _mapping;

    /// <summary>Unmaps the region; only its <see cref="GuestMemory"/> does this.</summary>
    internal void Unmap() => _mapping.Dispose();

    /// <inheritdoc/>
    public override string ToString() => $"[0x{GuestAddress:x}, 0x{End:x}){(ReadOnly ? " ro" : "")}";
}
