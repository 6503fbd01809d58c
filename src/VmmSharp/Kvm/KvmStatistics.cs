using System.Buffers.Binary;
using System.Runtime.InteropServices;
using VmmSharp.Interop;

namespace VmmSharp.Kvm;

/// <summary>
/// Reads KVM's binary statistics (<c>KVM_GET_STATS_FD</c>, api.rst 4.133): a header, one descriptor per counter
/// (its name and where its values are), and the values, all read with <c>pread</c> from a file descriptor KVM gives out.
/// </summary>
internal static unsafe class KvmStatistics
{
    private const int HeaderSize = 24;
    private const int DescriptorSize = 16; // before the name
    private const int MaxFileSize = 1 << 20; // a vCPU's file is a few KiB; anything beyond is not KVM's layout

    /// <summary>The single-valued counters of the object behind <paramref name="owner"/> (a VM or vCPU descriptor), by name; histograms are left out.</summary>
    public static Dictionary<string, long> Read(SafeFileDescriptor owner)
    {
        int fd = Libc.Ioctl(owner, KvmIoctl.GetStatsFd, 0);
        if (fd < 0)
        {
            throw new KvmException(KvmIoctl.GetStatsFd, Marshal.GetLastPInvokeError(), "statistics");
        }
        using var stats = new SafeFileDescriptor(fd);
        Span<byte> header = stackalloc byte[HeaderSize];
        ReadAt(stats, header, 0);
        int nameSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        long descOffset = BinaryPrimitives.ReadUInt32LittleEndian(header[16..]);
        long dataOffset = BinaryPrimitives.ReadUInt32LittleEndian(header[20..]);
        long descBytes = (long)count * (DescriptorSize + nameSize);
        if (nameSize is <= 0 or > 256 || count < 0 || descBytes > MaxFileSize)
        {
            throw new VmmException($"KVM's statistics header is not one this reader knows (name size {nameSize}, {count} counters)");
        }
        byte[] descriptors = new byte[descBytes];
        ReadAt(stats, descriptors, descOffset);
        var result = new Dictionary<string, long>(count);
        Span<byte> value = stackalloc byte[8];
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> d = descriptors.AsSpan(i * (DescriptorSize + nameSize), DescriptorSize + nameSize);
            ushort size = BinaryPrimitives.ReadUInt16LittleEndian(d[6..]);
            uint offset = BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
            ReadOnlySpan<byte> name = d[DescriptorSize..];
            int end = name.IndexOf((byte)0);
            if (size != 1 || end <= 0)
            {
                continue; // a histogram, or a nameless entry
            }
            ReadAt(stats, value, dataOffset + offset);
            result[System.Text.Encoding.ASCII.GetString(name[..end])] = BinaryPrimitives.ReadInt64LittleEndian(value);
        }
        return result;
    }

    private static void ReadAt(SafeFileDescriptor fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            nint n = Libc.Pread(fd, p, (nuint)buffer.Length, offset);
            if (n != buffer.Length)
            {
                throw new VmmException(n < 0
                    ? $"reading KVM's statistics failed: {Libc.ErrorText(Marshal.GetLastPInvokeError())}"
                    : $"KVM's statistics ended after {n} of {buffer.Length} bytes at offset {offset}");
            }
        }
    }
}
