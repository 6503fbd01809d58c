using System.Runtime.InteropServices;
using VmmSharp.Memory;

namespace VmmSharp.Devices.Virtio.Queues;

/// <summary>Non-throwing typed guest-memory access for the device side, where a bad guest address is an answer, not an exception.</summary>
internal static class GuestMemoryAccess
{
    public static bool TryRead<T>(this GuestMemory memory, ulong address, out T value)
        where T : unmanaged
    {
        value = default;
        return memory.TryRead(address, MemoryMarshal.AsBytes(new Span<T>(ref value)));
    }

    public static bool TryWrite<T>(this GuestMemory memory, ulong address, T value)
        where T : unmanaged
        => memory.TryWrite(address, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(ref value)));

    /// <summary>
    /// The next host-contiguous piece of [<paramref name="address"/>, +<paramref name="remaining"/>), advancing both;
    /// false when nothing remains or the range leaves guest memory (or is read-only and <paramref name="forWrite"/>).
    /// </summary>
    public static bool NextSpan(this GuestMemory memory, ref ulong address, ref ulong remaining, bool forWrite, out Span<byte> span)
    {
        span = default;
        if (remaining == 0 || memory.Find(address) is not { } region || (forWrite && region.ReadOnly))
        {
            return false;
        }
        int n = (int)Math.Min(Math.Min(remaining, region.End - address), int.MaxValue);
        span = memory.GetSpan(address, n);
        if (forWrite)
        {
            GuestMemory.MarkHostWrite(region, address, (ulong)n); // the caller writes the span: a diff snapshot must hold it
        }
        address += (ulong)n;
        remaining -= (ulong)n;
        return true;
    }
}
