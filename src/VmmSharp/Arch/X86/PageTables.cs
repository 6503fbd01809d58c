using VmmSharp.Memory;

namespace VmmSharp.Arch.X86;

/// <summary>Identity page tables for the first 4 GiB with 2 MiB pages (no 1 GiB pages: not every CPU has them).</summary>
internal static class PageTables
{
    public const ulong Present = 1;
    public const ulong Writable = 2;
    public const ulong LargePage = 0x80;
    public const ulong LargePageSize = 2 * 1024 * 1024;

    /// <summary>Writes PML4 → PDPT → page directories at their <see cref="Layout"/> addresses; returns CR3.</summary>
    public static ulong WriteIdentityMap(GuestMemory memory)
    {
        memory.Fill(Layout.Pml4, Layout.PageSize, 0);
        memory.Fill(Layout.Pdpt, Layout.PageSize, 0);
        memory.Write(Layout.Pml4, Layout.Pdpt | Present | Writable);
        Span<ulong> directory = stackalloc ulong[512];
        for (int d = 0; d < Layout.PageDirectoryCount; d++)
        {
            ulong pd = Layout.PageDirectories + ((ulong)d * Layout.PageSize);
            memory.Write(Layout.Pdpt + ((ulong)d * 8), pd | Present | Writable);
            for (int i = 0; i < 512; i++)
            {
                directory[i] = ((((ulong)d * 512) + (ulong)i) * LargePageSize) | Present | Writable | LargePage;
            }
            memory.Write(pd, System.Runtime.InteropServices.MemoryMarshal.AsBytes(directory));
        }
        return Layout.Pml4;
    }
}
