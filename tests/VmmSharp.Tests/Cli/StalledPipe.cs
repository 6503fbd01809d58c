using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VmmSharp.Tests.Cli;

/// <summary>
/// A named pipe with a 4 KiB buffer that is opened for reading and never read: a process writing to it stalls after
/// 4 KiB, as behind a reader that stopped reading.
/// </summary>
internal sealed partial class StalledPipe : IDisposable
{
    private const int O_RDONLY = 0, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000, F_SETPIPE_SZ = 1031;
    private const nuint FIONREAD = 0x541b;

    private readonly SafeFileHandle _readEnd;

    public StalledPipe()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"vmmsharp-stalled-{Guid.NewGuid():N}");
        Assert.Equal(0, MkFifo(Path, 0x180)); // 0600
        // Opened first, so that the writer's open does not wait for a reader.
        _readEnd = new SafeFileHandle(Open(Path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), ownsHandle: true);
        Assert.False(_readEnd.IsInvalid, $"open of the fifo failed: errno {Marshal.GetLastPInvokeError()}");
        Assert.True(Fcntl(_readEnd, F_SETPIPE_SZ, 4096) >= 4096, $"F_SETPIPE_SZ failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public string Path { get; }

    /// <summary>How many bytes wait in the pipe (it takes a little less than 4 KiB before a writer waits).</summary>
    public unsafe int Queued
    {
        get
        {
            int queued = 0;
            return Ioctl(_readEnd, FIONREAD, &queued) == 0 ? queued : -1;
        }
    }

    public void Dispose()
    {
        _readEnd.Dispose();
        File.Delete(Path);
    }

    [LibraryImport("libc.so.6", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkFifo(string path, uint mode);

    [LibraryImport("libc.so.6", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc.so.6", EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int Ioctl(SafeFileHandle fd, nuint request, int* value);

    [LibraryImport("libc.so.6", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(SafeFileHandle fd, int command, int argument);
}
