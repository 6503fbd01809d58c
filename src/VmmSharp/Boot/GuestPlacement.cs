using System.Text;
using VmmSharp.Arch.X86;
using VmmSharp.Memory;

namespace VmmSharp.Boot;

/// <summary>Checks and helpers the loaders share for putting things into guest RAM.</summary>
internal static class GuestPlacement
{
    /// <summary>Throws unless [<paramref name="address"/>, +<paramref name="size"/>) is all guest RAM.</summary>
    public static void EnsureFits(GuestMemory memory, ulong address, ulong size, string what)
    {
        if (memory.Contains(address, Math.Max(size, 1)))
        {
            return;
        }
        GuestRegion? region = memory.Find(address);
        throw new InvalidKernelImageException(region is null
            ? $"{what} needs 0x{size:x} bytes at 0x{address:x} but there is no guest RAM at 0x{address:x}"
            : $"{what} needs 0x{size:x} bytes at 0x{address:x} but guest RAM ends at 0x{region.End:x}");
    }

    /// <summary>Writes <paramref name="text"/> as a NUL-terminated string, refusing one of more than <paramref name="maxLength"/> bytes.</summary>
    /// <exception cref="ArgumentException">The string is too long.</exception>
    public static ulong WriteCString(GuestMemory memory, ulong address, string text, int maxLength, string what)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length > maxLength)
        {
            throw new ArgumentException($"{what} of {bytes.Length} bytes exceeds the limit of {maxLength} bytes", nameof(text));
        }
        memory.Write(address, bytes);
        memory.Write<byte>(address + (ulong)bytes.Length, 0);
        return (ulong)bytes.Length + 1;
    }

    /// <summary>
    /// Places an initrd as high as possible in RAM below <paramref name="limit"/> and below 4 GiB, page-aligned and above
    /// <paramref name="lowest"/> (the kernel's end), as Linux and PVH loaders do so the kernel can grow upward; returns its address.
    /// </summary>
    public static ulong PlaceHigh(E820Map map, ulong size, ulong lowest, ulong limit)
    {
        ulong top = Math.Min(map.LowRamEnd, limit);
        ulong address = size <= top ? (top - size) & ~(Layout.PageSize - 1) : 0;
        if (size > top || address < lowest)
        {
            throw new InvalidKernelImageException(
                $"initrd of 0x{size:x} bytes does not fit in guest RAM between the kernel's end at 0x{lowest:x} and 0x{top:x}");
        }
        return address;
    }

    /// <summary>Rounds up to the page size.</summary>
    public static ulong PageAlign(ulong value) => (value + Layout.PageSize - 1) & ~(Layout.PageSize - 1);
}
