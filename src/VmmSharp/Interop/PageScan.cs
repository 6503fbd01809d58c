using System.Runtime.InteropServices;

namespace VmmSharp.Interop;

/// <summary>
/// Which pages of this process's mappings hold memory of their own, through the <c>PAGEMAP_SCAN</c> ioctl on
/// <c>/proc/self/pagemap</c> (Linux 6.7): one page-table walk in the kernel returns the runs of pages that match, so
/// neither the pages nor a per-page pagemap entry are read. Where the kernel lacks it, <see cref="TryScan"/> says so and
/// callers fall back to touching the whole range.
/// </summary>
/// <remarks>Threading: any thread; the pagemap descriptor is opened once and shared.</remarks>
internal static unsafe class PageScan
{
    // linux/fs.h: PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg) with the 96-byte pm_scan_arg.
    private const nuint PagemapScan = 0xC060_6610;
    private const ulong PageIsFile = 1 << 2;
    private const ulong PageIsPresent = 1 << 3;
    private const ulong PageIsSwapped = 1 << 4;
    private const int ENOTTY = 25;
    private const int EINVAL = 22;
    private const int RegionsPerCall = 64;

    private static readonly Lazy<SafeFileDescriptor?> Pagemap = new(OpenPagemap);

    /// <summary>Which pages <see cref="TryScan"/> reports.</summary>
    public enum Kind
    {
        /// <summary>Pages present in memory or swapped out: everything a mapping holds (anonymous memory that was never touched is neither).</summary>
        Populated,

        /// <summary>Populated pages that are not the file's: in a private file mapping, the pages written since it was mapped (copied on write).</summary>
        PrivateCopies,
    }

    /// <summary>
    /// Appends to <paramref name="runs"/> the runs of pages of <paramref name="kind"/> in [<paramref name="start"/>,
    /// +<paramref name="length"/>), as (offset from start, length) pairs in ascending order, adjacent runs merged.
    /// </summary>
    /// <returns>False, with <paramref name="runs"/> unchanged, if this kernel cannot scan (no <c>PAGEMAP_SCAN</c>).</returns>
    /// <exception cref="IOException">The scan failed for another reason.</exception>
    public static bool TryScan(nint start, nuint length, Kind kind, List<(ulong Offset, ulong Length)> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (Pagemap.Value is not { } pagemap)
        {
            return false;
        }
        PageRegion* regions = stackalloc PageRegion[RegionsPerCall];
        ulong end = (ulong)start + length;
        var arg = new ScanArg
        {
            Size = (ulong)sizeof(ScanArg),
            Start = (ulong)start,
            End = end,
            Vec = (ulong)regions,
            VecLength = RegionsPerCall,
            // A page matches if it is present or swapped (any of), and, for private copies, is not a file page.
            CategoryInverted = kind == Kind.PrivateCopies ? PageIsFile : 0,
            CategoryMask = kind == Kind.PrivateCopies ? PageIsFile : 0,
            CategoryAnyOfMask = PageIsPresent | PageIsSwapped,
            ReturnMask = PageIsPresent | PageIsSwapped,
        };
        int first = runs.Count;
        while (arg.Start < end)
        {
            int n = Libc.Ioctl(pagemap, PagemapScan, &arg);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if ((errno is ENOTTY or EINVAL) && runs.Count == first)
                {
                    return false;
                }
                throw new IOException($"PAGEMAP_SCAN of [0x{start:x}, +0x{length:x}) failed: {Libc.ErrorText(errno)}");
            }
            for (int i = 0; i < n; i++)
            {
                ulong offset = regions[i].Start - (ulong)start, size = regions[i].End - regions[i].Start;
                if (runs.Count > first && runs[^1].Offset + runs[^1].Length == offset)
                {
                    runs[^1] = (runs[^1].Offset, runs[^1].Length + size); // swapped next to present: one run
                }
                else
                {
                    runs.Add((offset, size));
                }
            }
            if (arg.WalkEnd <= arg.Start)
            {
                break; // no progress: never loop forever on a kernel that reports nothing
            }
            arg.Start = arg.WalkEnd;
        }
        return true;
    }

    private static SafeFileDescriptor? OpenPagemap()
    {
        int fd = Libc.Open("/proc/self/pagemap", Libc.O_RDONLY | Libc.O_CLOEXEC);
        return fd < 0 ? null : new SafeFileDescriptor(fd);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct ScanArg
    {
        public ulong Size;
        public ulong Flags;
        public ulong Start;
        public ulong End;
        public ulong WalkEnd;
        public ulong Vec;
        public ulong VecLength;
        public ulong MaxPages;
        public ulong CategoryInverted;
        public ulong CategoryMask;
        public ulong CategoryAnyOfMask;
        public ulong ReturnMask;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PageRegion
    {
        public ulong Start;
        public ulong End;
        public ulong Categories;
    }
}
