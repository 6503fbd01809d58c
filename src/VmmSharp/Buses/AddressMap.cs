namespace VmmSharp.Buses;

/// <summary>
/// Non-overlapping address ranges mapped to devices, shared by <see cref="IoBus"/> and <see cref="MmioBus"/>.
/// </summary>
/// <remarks>
/// Lookups run on the VM-exit hot path, from several vCPU threads: they binary-search an immutable sorted
/// array without locking or allocating. Registration is rare, so it copies the array and publishes the new one
/// (copy on write); a lookup racing with it sees either the old map or the new one, both consistent.
/// </remarks>
/// <typeparam name="TDevice">The device interface of the bus.</typeparam>
internal sealed class AddressMap<TDevice>
    where TDevice : class
{
    private readonly Lock _registrationLock = new();
    private Entry[] _entries = [];

    /// <summary>Adds a device for the addresses <paramref name="first"/> to <paramref name="last"/> inclusive.</summary>
    /// <param name="first">The first address of the range.</param>
    /// <param name="last">The last address of the range (inclusive, so a range can end at the top of the space).</param>
    /// <param name="device">The device.</param>
    /// <param name="describe">Formats a range for the overlap error, in the bus's own terms.</param>
    /// <param name="paramName">The caller's parameter the error names.</param>
    /// <exception cref="ArgumentException">The range overlaps a registered one; the message names both.</exception>
    public void Add(ulong first, ulong last, TDevice device, Func<ulong, ulong, string> describe, string paramName)
    {
        lock (_registrationLock)
        {
            Entry[] old = _entries;
            int index = UpperBound(old, first);
            // Only the neighbours can overlap: the entry starting at or before `first`, and the one after it.
            if (index > 0 && old[index - 1].Last >= first)
            {
                throw Overlap(first, last, old[index - 1], describe, paramName);
            }
            if (index < old.Length && old[index].First <= last)
            {
                throw Overlap(first, last, old[index], describe, paramName);
            }

            var updated = new Entry[old.Length + 1];
            Array.Copy(old, 0, updated, 0, index);
            updated[index] = new Entry(first, last, device);
            Array.Copy(old, index, updated, index + 1, old.Length - index);
            Volatile.Write(ref _entries, updated);
        }
    }

    /// <summary>Finds the device whose range holds <paramref name="address"/>.</summary>
    /// <param name="address">The address accessed.</param>
    /// <param name="device">The device, or null.</param>
    /// <param name="offset">The address minus the start of the device's range.</param>
    /// <returns>Whether a device holds the address.</returns>
    public bool TryFind(ulong address, out TDevice? device, out ulong offset)
    {
        Entry[] entries = Volatile.Read(ref _entries);
        int index = UpperBound(entries, address) - 1;
        if (index >= 0 && entries[index].Last >= address)
        {
            device = entries[index].Device;
            offset = address - entries[index].First;
            return true;
        }
        device = null;
        offset = 0;
        return false;
    }

    /// <summary>The index of the first entry starting after <paramref name="address"/>.</summary>
    private static int UpperBound(Entry[] entries, ulong address)
    {
        int low = 0;
        int high = entries.Length;
        while (low < high)
        {
            int mid = (int)((uint)(low + high) >> 1);
            if (entries[mid].First <= address)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }
        return low;
    }

    private static ArgumentException Overlap(ulong first, ulong last, Entry existing, Func<ulong, ulong, string> describe, string paramName) =>
        new($"range {describe(first, last)} overlaps the registered range {describe(existing.First, existing.Last)}", paramName);

    private readonly record struct Entry(ulong First, ulong Last, TDevice Device);
}
