using System.Runtime.InteropServices;
using VmmSharp.Interop;

namespace VmmSharp.Memory;

/// <content>
/// Guest memory backed by a memory file, mapped private: pages load lazily from the file on first touch, the guest's
/// writes stay in this process (the file is never written), and discarding them reverts a page to the file's contents.
/// The file holds the regions one after the other, in address order, with no gaps.
/// </content>
public sealed partial class GuestMemory
{
    private FileIdentity? _backing;

    /// <summary>
    /// Creates guest memory with <paramref name="regions"/> mapped private from the file at <paramref name="path"/>,
    /// whose size must be the regions' total.
    /// </summary>
    /// <exception cref="GuestMemoryFileException">The file cannot be opened or mapped, or its size is not the regions' total.</exception>
    public static GuestMemory FromFile(ReadOnlySpan<GuestRegionSpec> regions, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var layout = new GuestMemory(regions); // validates and sorts; its anonymous mappings are replaced below
        try
        {
            layout.MapFile(path);
            return layout;
        }
        catch
        {
            layout.Dispose();
            throw;
        }
    }

    /// <summary>Whether the memory is mapped from a file now (after <see cref="FromFile"/> or <see cref="MapFile"/>).</summary>
    public bool IsFileBacked => _backing is not null;

    /// <summary>
    /// Maps every region private from the memory file at <paramref name="path"/>, over its present address (the host
    /// addresses, and so KVM's memory slots, stay valid): the guest sees the file's contents, as if it had been reset to
    /// them. If the memory is mapped from this very file already, the private pages are discarded instead
    /// (<c>madvise(MADV_DONTNEED)</c>), which is cheaper. The vCPUs must not run meanwhile.
    /// </summary>
    /// <exception cref="GuestMemoryFileException">The file cannot be opened or mapped, or its size is not <see cref="TotalSize"/>.</exception>
    public void MapFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        ObjectDisposedException.ThrowIf(_disposed, this);
        FileIdentity identity = FileIdentity.Of(path);
        if (identity.Size != (long)TotalSize)
        {
            throw new GuestMemoryFileException(path, $"is {identity.Size} bytes, but the guest's memory is {TotalSize} bytes");
        }
        if (_backing == identity)
        {
            DiscardPrivatePages();
            return;
        }
        int fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new GuestMemoryFileException(path, $"cannot be opened: {Libc.ErrorText(errno)}");
        }
        using var file = new SafeFileDescriptor(fd);
        long offset = 0;
        foreach (GuestRegion r in _regions)
        {
            try
            {
                _ = SafeMapping.PrivateFile(file, (nuint)r.Size, offset, r.Mapping.Address, $"memory file '{path}'");
            }
            catch (IOException e)
            {
                _backing = null; // part mapped: the memory is neither the old contents nor the file's
                throw new GuestMemoryFileException(path, e.Message);
            }
            offset += (long)r.Size;
        }
        _backing = identity;
    }

    /// <summary>
    /// Discards every page the guest or the host wrote since the memory was mapped from its file: they read as the
    /// file's contents again. Only for file-backed memory; the vCPUs must not run meanwhile.
    /// </summary>
    public void DiscardPrivatePages()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_backing is null)
        {
            throw new InvalidOperationException("the guest memory is not mapped from a file: there is nothing to revert to");
        }
        // Only the pages copied on write (by the guest or the host) differ from the file: find them in one page-table
        // walk and discard just those runs, so the pages the guest only read stay mapped (no faults to bring them back).
        var runs = new List<(ulong Offset, ulong Length)>();
        foreach (GuestRegion r in _regions)
        {
            runs.Clear();
            if (!PageScan.TryScan(r.Mapping.Address, (nuint)r.Size, PageScan.Kind.PrivateCopies, runs))
            {
                DiscardRange(r, 0, r.Size);
                continue;
            }
            foreach ((ulong offset, ulong length) in runs)
            {
                DiscardRange(r, offset, length);
            }
        }
    }

    /// <summary>Discards the private pages in [<paramref name="offset"/>, +<paramref name="length"/>) of region <paramref name="region"/> only.</summary>
    internal static void DiscardRange(GuestRegion region, ulong offset, ulong length)
    {
        if (Libc.Madvise(region.Mapping.Address + (nint)offset, (nuint)length, Libc.MADV_DONTNEED) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"madvise(MADV_DONTNEED) of guest region {region} failed: {Libc.ErrorText(errno)}");
        }
    }

    /// <summary>Which file a mapping came from: its device, inode, size and time, so a replaced file is not taken for the old one.</summary>
    private sealed record FileIdentity(ulong Device, ulong Inode, long Size, DateTime Modified)
    {
        public static unsafe FileIdentity Of(string path)
        {
            try
            {
                var info = new FileInfo(path);
                Libc.Stat stat;
                if (!info.Exists || Libc.StatPath(path, &stat) != 0)
                {
                    throw new GuestMemoryFileException(path, "does not exist");
                }
                return new FileIdentity(stat.Device, stat.Inode, info.Length, info.LastWriteTimeUtc);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new GuestMemoryFileException(path, $"cannot be read: {e.Message}");
            }
        }
    }
}
