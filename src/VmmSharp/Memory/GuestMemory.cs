using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace VmmSharp.Memory;

/// <summary>
/// The guest's physical memory: a set of non-overlapping regions with holes between them.
/// Every access is bounds-checked against the regions; an address no region backs raises
/// <see cref="GuestMemoryException"/> and never touches host memory outside the mappings.
/// </summary>
/// <remarks>
/// Threading: every member but <see cref="Dispose"/> may be called from any thread at any time; accesses are not
/// locked against each other (two threads writing the same bytes race, as two CPUs would). <see cref="Dispose"/>
/// must not race with accesses on other threads, and is refused while a VM uses the memory: a
/// <c>VirtualMachine</c> owns the memory it was created over and disposes it itself, once no vCPU can touch it.
/// </remarks>
public sealed partial class GuestMemory : IDisposable
{
    /// <summary>The page size regions are aligned to.</summary>
    public const ulong PageSize = 4096;

    private readonly GuestRegion[] _regions;
    private readonly Lock _ownerLock = new();
    private bool _disposed;
    private bool _inUseByVm;

    /// <summary>Creates guest memory from region descriptions, mapping anonymous memory for each.</summary>
    /// <exception cref="ArgumentException">A region is empty, unaligned, overflows the address space or overlaps another.</exception>
    public GuestMemory(params ReadOnlySpan<GuestRegionSpec> regions)
    {
        if (regions.IsEmpty)
        {
            throw new ArgumentException("guest memory needs at least one region", nameof(regions));
        }
        GuestRegionSpec[] sorted = regions.ToArray();
        Array.Sort(sorted, (a, b) => a.GuestAddress.CompareTo(b.GuestAddress));
        for (int i = 0; i < sorted.Length; i++)
        {
            GuestRegionSpec r = sorted[i];
            if (r.Size == 0 || r.Size % PageSize != 0 || r.GuestAddress % PageSize != 0)
            {
                throw new ArgumentException(
                    $"guest memory region at 0x{r.GuestAddress:x} of 0x{r.Size:x} bytes is not a non-empty, page-aligned range", nameof(regions));
            }
            if (r.GuestAddress + r.Size < r.GuestAddress)
            {
                throw new ArgumentException($"guest memory region at 0x{r.GuestAddress:x} of 0x{r.Size:x} bytes overflows the address space", nameof(regions));
            }
            if (i > 0 && sorted[i - 1].GuestAddress + sorted[i - 1].Size > r.GuestAddress)
            {
                throw new ArgumentException(
                    $"guest memory region at 0x{r.GuestAddress:x} overlaps the region at 0x{sorted[i - 1].GuestAddress:x} of 0x{sorted[i - 1].Size:x} bytes", nameof(regions));
            }
        }

        _regions = new GuestRegion[sorted.Length];
        try
        {
            for (int i = 0; i < sorted.Length; i++)
            {
                _regions[i] = new GuestRegion(sorted[i].GuestAddress, sorted[i].Size, sorted[i].ReadOnly);
            }
        }
        catch
        {
            foreach (GuestRegion? r in _regions)
            {
                r?.Unmap();
            }
            throw;
        }
    }

    private GuestMemory(GuestRegion[] regions)
    {
        _regions = regions;
    }

    /// <summary>Creates guest memory of one writable region of <paramref name="size"/> bytes at address 0.</summary>
    public static GuestMemory WithRam(ulong size) => new(new GuestRegionSpec(0, size));

    /// <summary>The regions, in ascending address order.</summary>
    public IReadOnlyList<GuestRegion> Regions => _regions;

    /// <summary>The sum of all regions' sizes.</summary>
    public ulong TotalSize
    {
        get
        {
            ulong total = 0;
            foreach (GuestRegion r in _regions)
            {
                total += r.Size;
            }
            return total;
        }
    }

    /// <summary>Whether every byte of [<paramref name="address"/>, <paramref name="address"/> + <paramref name="length"/>) is backed.</summary>
    public bool Contains(ulong address, ulong length = 1)
    {
        ulong end = address + length;
        if (end < address)
        {
            return false;
        }
        while (address < end)
        {
            GuestRegion? r = Find(address);
            if (r is null)
            {
                return false;
            }
            address = Math.Min(end, r.End);
        }
        return true;
    }

    /// <summary>The region holding <paramref name="address"/>, or null in a hole.</summary>
    public GuestRegion? Find(ulong address)
    {
        foreach (GuestRegion r in _regions)
        {
            if (r.Contains(address))
            {
                return r;
            }
        }
        return null;
    }

    /// <summary>Reads a value of an unmanaged type at <paramref name="address"/>, in the guest's (little-endian) byte order.</summary>
    public T Read<T>(ulong address)
        where T : unmanaged
    {
        T value = default;
        Read(address, MemoryMarshal.AsBytes(new Span<T>(ref value)));
        return value;
    }

    /// <summary>Writes a value of an unmanaged type at <paramref name="address"/>.</summary>
    public void Write<T>(ulong address, T value)
        where T : unmanaged
        => Write(address, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(ref value)));

    /// <summary>Copies guest memory at <paramref name="address"/> into <paramref name="destination"/>.</summary>
    /// <exception cref="GuestMemoryException">Part of the range is not backed by a region.</exception>
    public void Read(ulong address, Span<byte> destination)
    {
        if (!TryAccess(address, destination, write: false, out string? error))
        {
            throw new GuestMemoryException(address, (ulong)destination.Length, error);
        }
    }

    /// <summary>Copies <paramref name="source"/> into guest memory at <paramref name="address"/>.</summary>
    /// <exception cref="GuestMemoryException">Part of the range is not backed, or is read-only.</exception>
    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        // The span is only read from when write is true.
        Span<byte> span = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(source), source.Length);
        if (!TryAccess(address, span, write: true, out string? error))
        {
            throw new GuestMemoryException(address, (ulong)source.Length, error);
        }
    }

    /// <summary>Like <see cref="Read(ulong, Span{byte})"/>, but returns false instead of throwing.</summary>
    public bool TryRead(ulong address, Span<byte> destination) => TryAccess(address, destination, write: false, out _);

    /// <summary>Like <see cref="Write(ulong, ReadOnlySpan{byte})"/>, but returns false instead of throwing.</summary>
    public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        Span<byte> span = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(source), source.Length);
        return TryAccess(address, span, write: true, out _);
    }

    /// <summary>Fills <paramref name="length"/> bytes at <paramref name="address"/> with <paramref name="value"/>.</summary>
    /// <exception cref="GuestMemoryException">Part of the range is not backed, or is read-only; nothing was written.</exception>
    public void Fill(ulong address, ulong length, byte value)
    {
        // The whole range first: the chunks below would otherwise fill up to the first bad byte, then throw.
        if (!CheckRange(address, length, write: true, out string? error))
        {
            throw new GuestMemoryException(address, length, error);
        }
        Span<byte> chunk = stackalloc byte[512];
        chunk.Fill(value);
        while (length > 0)
        {
            int n = (int)Math.Min(length, (ulong)chunk.Length);
            Write(address, chunk[..n]);
            address += (ulong)n;
            length -= (ulong)n;
        }
    }

    /// <summary>
    /// A direct view of <paramref name="length"/> guest bytes at <paramref name="address"/>, which must lie in one region.
    /// Writing through it bypasses the read-only check and the host-write log of diff snapshots (the device models'
    /// writes through it are logged by their own path); valid until the memory is disposed.
    /// </summary>
    public Span<byte> GetSpan(ulong address, int length)
    {
        GuestRegion? r = Find(address);
        if (r is null || length < 0 || (ulong)length > r.End - address)
        {
            throw new GuestMemoryException(address, (ulong)Math.Max(length, 0),
                r is null ? "no memory region there" : $"crosses the end of region {r}");
        }
        return r.HostSpan(address - r.GuestAddress, length);
    }

    /// <summary>
    /// Starts logging, per page, what the host writes into guest memory (<see cref="Write(ulong, ReadOnlySpan{byte})"/>,
    /// <see cref="TryWrite"/>, <see cref="Fill"/> and the device models' DMA): KVM's dirty log sees only the guest's own
    /// writes, and a diff snapshot needs both. Only a VM that tracks dirty pages turns it on.
    /// </summary>
    internal void StartHostWriteLog()
    {
        foreach (GuestRegion r in _regions)
        {
            r.StartHostWriteLog();
        }
    }

    /// <summary>Marks [<paramref name="address"/>, +<paramref name="length"/>) of <paramref name="region"/> written by the host (a direct span the caller wrote through).</summary>
    internal static void MarkHostWrite(GuestRegion region, ulong address, ulong length) => region.MarkHostWrite(address - region.GuestAddress, length);

    /// <summary>Reads a NUL-terminated string of at most <paramref name="maxLength"/> bytes at <paramref name="address"/>.</summary>
    public string ReadCString(ulong address, int maxLength = 4096)
    {
        var bytes = new List<byte>();
        for (int i = 0; i < maxLength; i++)
        {
            byte b = Read<byte>(address + (ulong)i);
            if (b == 0)
            {
                break;
            }
            bytes.Add(b);
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>Unmaps the memory.</summary>
    /// <exception cref="InvalidOperationException">A VM uses the memory: dispose the VM instead, which disposes its memory.</exception>
    public void Dispose()
    {
        lock (_ownerLock)
        {
            if (_inUseByVm)
            {
                throw new InvalidOperationException(
                    "this guest memory is in use by a VM, whose vCPUs may still touch it: dispose the VM, which disposes the memory once no vCPU can run");
            }
            DisposeRegions();
        }
    }

    /// <summary>Marks the memory as owned by a VM, so that <see cref="Dispose"/> is refused until <see cref="ReleaseFromVm"/>.</summary>
    /// <exception cref="InvalidOperationException">Another VM owns it already.</exception>
    internal void ClaimForVm()
    {
        lock (_ownerLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_inUseByVm)
            {
                throw new InvalidOperationException("this guest memory already belongs to another VM; a VM owns its memory alone");
            }
            _inUseByVm = true;
        }
    }

    /// <summary>The owning VM is done with the memory, and no vCPU can touch it any more: unmaps it.</summary>
    internal void ReleaseFromVm()
    {
        lock (_ownerLock)
        {
            _inUseByVm = false;
            DisposeRegions();
        }
    }

    private void DisposeRegions()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (GuestRegion r in _regions)
        {
            r.Unmap();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryAccess(ulong address, Span<byte> data, bool write, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        // Check the whole range before copying anything, so a failed access changes nothing.
        if (!CheckRange(address, (ulong)data.Length, write, out error))
        {
            return false;
        }
        ulong cursor = address;
        int done = 0;
        while (done < data.Length)
        {
            GuestRegion r = Find(cursor)!;
            int n = (int)Math.Min((ulong)(data.Length - done), r.End - cursor);
            Span<byte> guest = r.HostSpan(cursor - r.GuestAddress, n);
            if (write)
            {
                data.Slice(done, n).CopyTo(guest);
                r.MarkHostWrite(cursor - r.GuestAddress, (ulong)n);
            }
            else
            {
                guest.CopyTo(data.Slice(done, n));
            }
            done += n;
            cursor += (ulong)n;
        }
        error = null;
        return true;
    }

    /// <summary>Whether every byte of the range is backed (and writable, for a write), without touching any.</summary>
    private bool CheckRange(ulong address, ulong length, bool write, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (address + length < address)
        {
            error = "the range wraps around the address space";
            return false;
        }
        ulong cursor = address;
        ulong end = address + length;
        while (cursor < end)
        {
            GuestRegion? r = Find(cursor);
            if (r is null)
            {
                error = $"no memory region at 0x{cursor:x}";
                return false;
            }
            if (write && r.ReadOnly)
            {
                error = $"region {r} is read-only";
                return false;
            }
            cursor = Math.Min(end, r.End);
        }
        error = null;
        return true;
    }
}
