using System.Runtime.InteropServices;

namespace VmmSharp.Interop;

/// <summary>An owned <c>mmap</c> mapping, unmapped exactly once.</summary>
internal sealed class SafeMapping : SafeHandle
{
    private SafeMapping(nint address, nuint length)
        : base(Libc.MAP_FAILED, ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
    }

    /// <summary>Length of the mapping in bytes.</summary>
    public nuint Length { get; }

    /// <summary>The mapping's first byte; valid while this handle is alive.</summary>
    public nint Address => handle;

    public override bool IsInvalid => handle == Libc.MAP_FAILED || handle == 0;

    /// <summary>Maps <paramref name="length"/> bytes of anonymous, zero-filled memory that is reserved lazily.</summary>
    public static SafeMapping Anonymous(nuint length)
    {
        nint address = Libc.MmapAnonymous(0, length, Libc.PROT_READ | Libc.PROT_WRITE,
            Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0);
        if (address == Libc.MAP_FAILED)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new InsufficientMemoryException($"mmap of {length} bytes of anonymous memory failed: {Libc.ErrorText(errno)} (errno {errno})");
        }
        return new SafeMapping(address, length);
    }

    /// <summary>Maps <paramref name="length"/> bytes of <paramref name="fd"/> shared, read-write, from offset 0.</summary>
    public static SafeMapping Shared(SafeFileDescriptor fd, nuint length, string what)
    {
        nint address = Libc.Mmap(0, length, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
        if (address == Libc.MAP_FAILED)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"mmap of {what} ({length} bytes) failed: {Libc.ErrorText(errno)} (errno {errno})");
        }
        return new SafeMapping(address, length);
    }

    /// <summary>
    /// Maps <paramref name="length"/> bytes of <paramref name="fd"/> from <paramref name="offset"/> private (copy on write:
    /// pages load lazily from the file, writes stay in this process), read-write; over <paramref name="at"/> if non-zero.
    /// </summary>
    public static nint PrivateFile(SafeFileDescriptor fd, nuint length, long offset, nint at, string what)
    {
        int flags = Libc.MAP_PRIVATE | Libc.MAP_NORESERVE | (at != 0 ? Libc.MAP_FIXED : 0);
        nint address = Libc.Mmap(at, length, Libc.PROT_READ | Libc.PROT_WRITE, flags, fd, offset);
        if (address == Libc.MAP_FAILED)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"mmap of {what} ({length} bytes at offset {offset}) failed: {Libc.ErrorText(errno)} (errno {errno})");
        }
        return address;
    }

    /// <summary>Takes ownership of a mapping made by <see cref="PrivateFile"/>.</summary>
    public static SafeMapping Adopt(nint address, nuint length) => new(address, length);

    protected override bool ReleaseHandle() => Libc.Munmap(handle, Length) == 0;
}
