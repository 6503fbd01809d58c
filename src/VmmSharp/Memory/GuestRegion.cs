using VmmSharp.Interop;

namespace VmmSharp.Memory;

/// <summary>
/// One contiguous range of guest-physical memory, backed by an anonymous host mapping. Its
/// <see cref="GuestMemory"/> owns the mapping and alone unmaps it. Any thread may use it.
/// </summary>
public sealed class GuestRegion
{
    private readonly SafeMapping _mapping;

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

    /// <summary>The mapping, for remapping it from a file or discarding its private pages.</summary>
    internal SafeMapping Mapping => _mapping;

    /// <summary>Unmaps the region; only its <see cref="GuestMemory"/> does this.</summary>
    internal void Unmap() => _mapping.Dispose();

    /// <inheritdoc/>
    public override string ToString() => $"[0x{GuestAddress:x}, 0x{End:x}){(ReadOnly ? " ro" : "")}";
}
