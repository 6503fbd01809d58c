using System.Runtime.InteropServices;

namespace VmmSharp.Interop;

/// <summary>The few libc calls VmmSharp needs, source-generated and blittable.</summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc.so.6";

    public const int O_RDWR = 0x2;
    public const int O_CLOEXEC = 0x80000;

    public const int PROT_READ = 0x1;
    public const int PROT_EXEC = 0x4;
    public const int PROT_WRITE = 0x2;
    public const int MAP_SHARED = 0x01;
    public const int MAP_PRIVATE = 0x02;
    public const int MAP_ANONYMOUS = 0x20;
    public const int MAP_NORESERVE = 0x4000;
    public static readonly nint MAP_FAILED = -1;

    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOENT = 2;
    public const int EACCES = 13;
    public const int EPERM = 1;

    public const int SIG_BLOCK = 0;
    public const int SIG_SETMASK = 2;

    public const short POLLIN = 0x1;

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport(Lib, EntryPoint = "pread", SetLastError = true)]
    public static partial nint Pread(SafeFileDescriptor fd, byte* buffer, nuint count, long offset);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport(Lib, EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    // ioctl and mmap take the SafeHandle itself: the marshaller holds it for the call (see SafeFileDescriptor).
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(SafeFileDescriptor fd, nuint request, nuint arg);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(SafeFileDescriptor fd, nuint request, void* arg);

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint addr, nuint length, int prot, int flags, SafeFileDescriptor fd, long offset);

    /// <summary>An anonymous mapping: no file, so no descriptor.</summary>
    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint MmapAnonymous(nint addr, nuint length, int prot, int flags, int noFd, long offset);

    public const int O_RDONLY = 0x0;
    public const int MAP_FIXED = 0x10;
    public const int MADV_DONTNEED = 4;

    public const int SEEK_DATA = 3;
    public const int SEEK_HOLE = 4;
    public const int ENXIO = 6;

    /// <summary>lseek on a file .NET opened (for SEEK_DATA/SEEK_HOLE, which .NET does not offer).</summary>
    [LibraryImport(Lib, EntryPoint = "lseek", SetLastError = true)]
    public static partial long Lseek(Microsoft.Win32.SafeHandles.SafeFileHandle fd, long offset, int whence);

    [LibraryImport(Lib, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint addr, nuint length, int advice);

    [LibraryImport(Lib, EntryPoint = "mprotect", SetLastError = true)]
    public static partial int Mprotect(nint addr, nuint length, int prot);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "pthread_self")]
    public static partial nuint PthreadSelf();

    [LibraryImport(Lib, EntryPoint = "pthread_kill")]
    public static partial int PthreadKill(nuint thread, int signal);

    [LibraryImport(Lib, EntryPoint = "pthread_sigmask")]
    public static partial int PthreadSigmask(int how, SigSet* set, SigSet* oldSet);

    [LibraryImport(Lib, EntryPoint = "sigtimedwait", SetLastError = true)]
    public static partial int SigTimedWait(SigSet* set, void* info, Timespec* timeout);

    [LibraryImport(Lib, EntryPoint = "__libc_current_sigrtmin")]
    public static partial int SigRtMin();

    [LibraryImport(Lib, EntryPoint = "strerror")]
    private static partial nint StrError(int errnum);

    /// <summary>The C library's text for <paramref name="errno"/>, e.g. "Invalid argument".</summary>
    public static string ErrorText(int errno) => Marshal.PtrToStringUTF8(StrError(errno)) ?? $"errno {errno}";

    /// <summary>glibc's 1024-bit <c>sigset_t</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SigSet
    {
        private fixed ulong _bits[16];

        /// <summary>Signals 1 to 64, the part the kernel's own sigset holds.</summary>
        public readonly ulong Low => _bits[0];

        public void Add(int signal) => _bits[(signal - 1) / 64] |= 1UL << ((signal - 1) % 64);
    }

    /// <summary><c>struct pollfd</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short ReturnedEvents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
