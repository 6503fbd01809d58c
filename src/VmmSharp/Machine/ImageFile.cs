using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VmmSharp.Machine;

/// <summary>
/// Reads a kernel or initrd file with a size limit checked before anything is allocated, so a huge file, a directory
/// or a device such as <c>/dev/zero</c> gets one clear error instead of an <see cref="OutOfMemoryException"/>.
/// </summary>
/// <remarks>Only regular files are read, as QEMU's <c>-kernel</c> does: a pipe or device has no size to check up front.</remarks>
internal static partial class ImageFile
{
    private const uint S_IFMT = 0xf000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFCHR = 0x2000, S_IFBLK = 0x6000, S_IFIFO = 0x1000, S_IFSOCK = 0xc000;

    /// <summary>Reads <paramref name="path"/> whole if it is a regular file of at most <paramref name="limit"/> bytes.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What it is, for messages: "kernel image", "initrd".</param>
    /// <param name="option">The <see cref="MachineOptions"/> property that named it.</param>
    /// <param name="limit">The largest size accepted, in bytes.</param>
    /// <param name="limitText">Why that is the limit, for the message: "the guest's 128 MiB of RAM".</param>
    /// <exception cref="MachineConfigurationException">The file is missing, not a regular file, unreadable or too large.</exception>
    public static byte[] Read(string path, string what, string option, long limit, string limitText)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new MachineConfigurationException(option, $"no {what} given");
        }
        if (Directory.Exists(path))
        {
            throw new MachineConfigurationException(option, $"{what} '{path}' is a directory: give a file");
        }
        try
        {
            using SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            string? kind = NonRegularKind(file);
            if (kind is not null)
            {
                throw new MachineConfigurationException(option, $"{what} '{path}' is {kind}, not a regular file: give a file");
            }
            long length = RandomAccess.GetLength(file);
            if (length > limit || length > Array.MaxLength)
            {
                throw new MachineConfigurationException(option, $"{what} '{path}' is {length} bytes, more than {limitText} ({limit} bytes) can hold");
            }
            byte[] bytes = new byte[length];
            int read = 0;
            while (read < bytes.Length)
            {
                int n = RandomAccess.Read(file, bytes.AsSpan(read), read);
                if (n == 0)
                {
                    return bytes[..read]; // it shrank while we read: take what is there
                }
                read += n;
            }
            return bytes;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new MachineConfigurationException(option, $"{what} '{path}' not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MachineConfigurationException(option, $"{what} '{path}' cannot be read: {e.Message}", e);
        }
    }

    private static unsafe string? NonRegularKind(SafeFileHandle file)
    {
        // glibc's struct stat on x86-64 is 144 bytes with st_mode at offset 24.
        byte* stat = stackalloc byte[144];
        if (Fstat(file, stat) != 0)
        {
            return null; // let the read report what is wrong
        }
        return (*(uint*)(stat + 24) & S_IFMT) switch
        {
            S_IFREG => null,
            S_IFDIR => "a directory",
            S_IFCHR => "a character device",
            S_IFBLK => "a block device",
            S_IFIFO => "a pipe",
            S_IFSOCK => "a socket",
            _ => "a special file",
        };
    }

    [LibraryImport("libc.so.6", EntryPoint = "fstat", SetLastError = true)]
    private static unsafe partial int Fstat(SafeFileHandle fd, byte* stat);
}
