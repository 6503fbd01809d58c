using VmmSharp.Memory;

namespace VmmSharp.Arch.X86;

/// <summary>
/// The guest's physical memory map as the kernel is told it (zero page e820 table, Multiboot mmap, PVH memmap):
/// RAM below <see cref="Layout.EbdaStart"/>, the legacy area up to 1 MiB reserved, RAM from 1 MiB, and RAM above 4 GiB.
/// </summary>
public sealed class E820Map
{
    private readonly E820Entry[] _entries;

    /// <summary>Creates a map of the given entries, sorted by address.</summary>
    public E820Map(IEnumerable<E820Entry> entries)
    {
        _entries = [.. entries.OrderBy(e => e.Address)];
    }

    /// <summary>The entries, in ascending address order.</summary>
    public IReadOnlyList<E820Entry> Entries => _entries;

    /// <summary>Builds the map for the RAM regions of <paramref name="memory"/> (read-only regions, ROMs, are left out).</summary>
    public static E820Map FromMemory(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        return FromRegions(memory.Regions.Where(r => !r.ReadOnly).Select(r => new GuestRegionSpec(r.GuestAddress, r.Size)));
    }

    /// <summary>Builds the map for RAM regions, carving the legacy area [<see cref="Layout.EbdaStart"/>, 1 MiB) out as reserved.</summary>
    public static E820Map FromRegions(IEnumerable<GuestRegionSpec> ramRegions)
    {
        ArgumentNullException.ThrowIfNull(ramRegions);
        var entries = new List<E820Entry>();
        bool legacyReserved = false;
        foreach (GuestRegionSpec r in ramRegions.OrderBy(r => r.GuestAddress))
        {
            ulong start = r.GuestAddress;
            ulong end = r.GuestAddress + r.Size;
            if (start < Layout.EbdaStart)
            {
                entries.Add(new E820Entry(start, Math.Min(end, Layout.EbdaStart) - start, E820Type.Ram));
            }
            if (start < Layout.HighMemoryStart && end > Layout.EbdaStart && !legacyReserved)
            {
                // The whole legacy area is reserved, whether or not RAM backs it all, so the MP table
                // and anything firmware-like placed there is never handed to the allocator.
                entries.Add(new E820Entry(Layout.EbdaStart, Layout.HighMemoryStart - Layout.EbdaStart, E820Type.Reserved));
                legacyReserved = true;
            }
            if (end > Layout.HighMemoryStart)
            {
                ulong from = Math.Max(start, Layout.HighMemoryStart);
                entries.Add(new E820Entry(from, end - from, E820Type.Ram));
            }
        }
        return new E820Map(entries);
    }

    /// <summary>
    /// The end of the RAM range that starts at or contains 1 MiB, capped at 4 GiB: where "low" RAM
    /// ends for things that need 32-bit addresses (Multiboot mem_upper, initrd placement).
    /// </summary>
    public ulong LowRamEnd
    {
        get
        {
            foreach (E820Entry e in _entries)
            {
                if (e.Type == E820Type.Ram && e.Address <= Layout.HighMemoryStart && e.End > Layout.HighMemoryStart)
                {
                    return Math.Min(e.End, Layout.FourGiB);
                }
            }
            return Layout.HighMemoryStart;
        }
    }
}
