using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VmmSharp.Cli.Api;

/// <summary>
/// The file or FIFO metrics (and log) lines go to, opened and written without ever blocking (as Firecracker does it: the FIFO is
/// opened read-write, so the open succeeds with no reader, and every write is non-blocking). A line that does not fit
/// (nobody drains the FIFO) is dropped whole and counted: lines under PIPE_BUF bytes are written all or nothing.
/// </summary>
internal sealed unsafe partial class MetricsSink : IDisposable
{
    /// <summary>The longest line, newline included, that a FIFO takes whole (PIPE_BUF); longer lines are dropped.</summary>
    public const int MaxLineLength = 4096;

    private const int O_RDWR = 0x2, O_CREAT = 0x40, O_NONBLOCK = 0x800, O_APPEND = 0x400, O_CLOEXEC = 0x80000;
    private const int EINTR = 4;

    private readonly SafeFileHandle _handle;
    private long _written;
    private long _dropped;

    private MetricsSink(string path, SafeFileHandle handle)
    {
        Path = path;
        _handle = handle;
    }

    public string Path { get; }

    public long LinesWritten => Interlocked.Read(ref _written);

    public long LinesDropped => Interlocked.Read(ref _dropped);

    /// <summary>Opens (creating a missing file) <paramref name="path"/> for appending lines.</summary>
    /// <param name="path">The file or FIFO.</param>
    /// <param name="field">The request field that named it, for the error message.</param>
    /// <exception cref="ApiFault">It cannot be opened; the message names it and says why.</exception>
    public static MetricsSink Open(string path, string field = "metrics_path")
    {
        if (path.Length == 0 || path.Contains('\0', StringComparison.Ordinal))
        {
            throw new ApiFault($"{field} '{path}': give the path of a file or named pipe");
        }
        SafeFileHandle handle = OpenFile(path, O_RDWR | O_CREAT | O_NONBLOCK | O_APPEND | O_CLOEXEC, 0x180 /* 0600 */);
        if (handle.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw new ApiFault($"{field} '{path}': cannot open it: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        return new MetricsSink(path, handle);
    }

    /// <summary>Writes one line (a newline is added) or, if the sink has no room for it now, drops it.</summary>
    /// <returns>Whether the line was written.</returns>
    public bool WriteLine(ReadOnlySpan<byte> line)
    {
        if (line.Length >= MaxLineLength)
        {
            Interlocked.Increment(ref _dropped);
            return false;
        }
        Span<byte> buffer = stackalloc byte[MaxLineLength];
        int length = line.Length;
        line.CopyTo(buffer);
        buffer[length++] = (byte)'\n';
        nint n;
        fixed (byte* p = buffer)
        {
            do
            {
                n = WriteFile(_handle, p, (nuint)length);
            }
            while (n < 0 && Marshal.GetLastPInvokeError() == EINTR);
        }
        if (n == length)
        {
            Interlocked.Increment(ref _written);
            return true;
        }
        // EAGAIN: the FIFO is full. A short write to a regular file (disk full) loses the line's end too: count it dropped.
        Interlocked.Increment(ref _dropped);
        return false;
    }

    public void Dispose() => _handle.Dispose();

    [LibraryImport("libc.so.6", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial SafeFileHandle OpenFile(string path, int flags, int mode);

    [LibraryImport("libc.so.6", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteFile(SafeFileHandle fd, byte* buffer, nuint count);
}
