using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using VmmSharp.Interop;
using VmmSharp.Memory;

namespace VmmSharp.Snapshot;

/// <summary>
/// A snapshot's memory file: the guest's regions one after the other, in address order, as a sparse file (all-zero
/// pages are holes). A diff memory file has the same size and holds only the pages dirtied since the previous snapshot;
/// <see cref="ApplyDiff"/> folds it into the full file it follows.
/// </summary>
/// <remarks>Threading: static methods; the guest must not run while its memory is written out.</remarks>
public static class MemoryFile
{
    private const int PageSize = (int)GuestMemory.PageSize;

    /// <summary>Writes every non-zero page of <paramref name="memory"/> to a new sparse file at <paramref name="path"/>; returns the bytes written.</summary>
    public static long WriteFull(GuestMemory memory, string path)
    {
        ArgumentNullException.ThrowIfNull(memory);
        using SafeFileHandle file = Create(path, memory.TotalSize);
        long written = 0, offset = 0;
        var populated = new List<(ulong Offset, ulong Length)>();
        foreach (GuestRegion r in memory.Regions)
        {
            // Anonymous memory the guest never touched has no pages: zero without looking. One page-table walk finds
            // the pages that exist; only those are read and checked for zeros (reading the others would map the zero
            // page into each). A file mapping's untouched pages are the file's: all are read.
            populated.Clear();
            if (memory.IsFileBacked || !PageScan.TryScan(r.Mapping.Address, (nuint)r.Size, PageScan.Kind.Populated, populated))
            {
                populated.Add((0, r.Size));
            }
            foreach ((ulong at, ulong length) in populated)
            {
                written += WriteRuns(file, r, at / GuestMemory.PageSize, (at + length) / GuestMemory.PageSize, offset,
                    (page, span) => span.IndexOfAnyExcept((byte)0) >= 0, path);
            }
            offset += (long)r.Size;
        }
        RandomAccess.FlushToDisk(file);
        file.Dispose();
        Commit(path);
        return written;
    }

    /// <summary>
    /// Writes the pages <paramref name="dirty"/> marks (one bitmap per region, from <c>VirtualMachine.GetDirtyPages</c>)
    /// to a new sparse file at <paramref name="path"/> of the memory's size, zero pages too; returns the bytes written.
    /// </summary>
    public static long WriteDiff(GuestMemory memory, IReadOnlyList<ulong[]> dirty, string path)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(dirty);
        if (dirty.Count != memory.Regions.Count)
        {
            throw new ArgumentException($"{dirty.Count} dirty bitmaps for {memory.Regions.Count} regions", nameof(dirty));
        }
        using SafeFileHandle file = Create(path, memory.TotalSize);
        long written = 0, offset = 0;
        for (int i = 0; i < dirty.Count; i++)
        {
            ulong[] bits = dirty[i];
            written += WriteRuns(file, memory.Regions[i], 0, memory.Regions[i].Size / GuestMemory.PageSize, offset, (page, _) => (bits[page / 64] & (1UL << (int)(page % 64))) != 0, path);
            offset += (long)memory.Regions[i].Size;
        }
        RandomAccess.FlushToDisk(file);
        file.Dispose();
        Commit(path);
        return written;
    }

    /// <summary>
    /// Copies the data of the diff memory file at <paramref name="diffPath"/> (its non-hole extents) into the full memory
    /// file at <paramref name="basePath"/>, which then holds the memory as it was at the diff snapshot.
    /// </summary>
    /// <exception cref="SnapshotFormatException">The files differ in size.</exception>
    public static void ApplyDiff(string diffPath, string basePath)
    {
        using SafeFileHandle diff = File.OpenHandle(diffPath, FileMode.Open, FileAccess.Read);
        using SafeFileHandle target = File.OpenHandle(basePath, FileMode.Open, FileAccess.ReadWrite);
        long size = RandomAccess.GetLength(diff);
        if (size != RandomAccess.GetLength(target))
        {
            throw new SnapshotFormatException($"diff memory file '{diffPath}' is {size} bytes, but '{basePath}' is {RandomAccess.GetLength(target)}");
        }
        byte[] buffer = new byte[1 << 20];
        long position = 0;
        while (position < size)
        {
            long data = Libc.Lseek(diff, position, Libc.SEEK_DATA);
            if (data < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.ENXIO)
                {
                    break; // only a hole is left
                }
                throw new IOException($"lseek(SEEK_DATA) in '{diffPath}' failed: {Libc.ErrorText(errno)}");
            }
            long hole = Libc.Lseek(diff, data, Libc.SEEK_HOLE);
            if (hole < 0)
            {
                hole = size;
            }
            for (long at = data; at < hole;)
            {
                int n = RandomAccess.Read(diff, buffer.AsSpan(0, (int)Math.Min(buffer.Length, hole - at)), at);
                if (n <= 0)
                {
                    break;
                }
                RandomAccess.Write(target, buffer.AsSpan(0, n), at);
                at += n;
            }
            position = hole;
        }
        RandomAccess.FlushToDisk(target);
    }

    /// <summary>The extents of <paramref name="path"/> that hold data (not holes), as (offset, length) pairs.</summary>
    public static IReadOnlyList<(long Offset, long Length)> DataExtents(string path)
    {
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        long size = RandomAccess.GetLength(file);
        var extents = new List<(long, long)>();
        for (long position = 0; position < size;)
        {
            long data = Libc.Lseek(file, position, Libc.SEEK_DATA);
            if (data < 0)
            {
                break;
            }
            long hole = Libc.Lseek(file, data, Libc.SEEK_HOLE);
            hole = hole < 0 ? size : hole;
            extents.Add((data, hole - data));
            position = hole;
        }
        return extents;
    }

    /// <summary>
    /// A new file beside <paramref name="path"/> (renamed over it by <see cref="Commit"/>): the guest's memory may be mapped
    /// from the file at <paramref name="path"/>, and truncating that one would pull the pages from under the mapping.
    /// </summary>
    private static SafeFileHandle Create(string path, ulong size)
    {
        ArgumentNullException.ThrowIfNull(path);
        SafeFileHandle file = File.OpenHandle(Temporary(path), FileMode.Create, FileAccess.ReadWrite);
        try
        {
            RandomAccess.SetLength(file, (long)size); // a hole of the whole size; pages written below fill it in
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static string Temporary(string path) => path + ".partial";

    private static void Commit(string path) => File.Move(Temporary(path), path, overwrite: true);

    /// <summary>
    /// Writes the runs of consecutive pages in [<paramref name="firstPage"/>, <paramref name="endPage"/>) of
    /// <paramref name="region"/> that <paramref name="take"/> selects.
    /// </summary>
    private static long WriteRuns(SafeFileHandle file, GuestRegion region, ulong firstPage, ulong endPage, long fileOffset, PageFilter take, string path)
    {
        long pages = (long)endPage, written = 0;
        long run = -1;
        for (long p = (long)firstPage; p <= pages; p++)
        {
            bool selected = p < pages && take((ulong)p, region.HostSpan((ulong)p * (ulong)PageSize, PageSize));
            if (selected && run < 0)
            {
                run = p;
            }
            else if (!selected && run >= 0)
            {
                // Runs are capped so each span fits an int; a long run is written in pieces.
                for (long start = run; start < p;)
                {
                    long count = Math.Min(p - start, 1 << 18);
                    ReadOnlySpan<byte> bytes = region.HostSpan((ulong)start * (ulong)PageSize, (int)(count * PageSize));
                    try
                    {
                        RandomAccess.Write(file, bytes, fileOffset + (start * PageSize));
                    }
                    catch (IOException e)
                    {
                        throw new IOException($"writing memory file '{path}' failed: {e.Message}", e);
                    }
                    written += bytes.Length;
                    start += count;
                }
                run = -1;
            }
        }
        return written;
    }

    private delegate bool PageFilter(ulong page, ReadOnlySpan<byte> bytes);
}
