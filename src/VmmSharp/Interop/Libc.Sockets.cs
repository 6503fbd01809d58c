using System.Runtime.InteropServices;

namespace VmmSharp.Interop;

/// <content>Unix-domain stream sockets, for the vsock device's host side; descriptors travel as SafeHandles.</content>
internal static unsafe partial class Libc
{
    public const int AF_UNIX = 1;
    public const int SOCK_STREAM = 1;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SHUT_WR = 1;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;

    public const uint EPOLLOUT = 0x4;
    public const uint EPOLLERR = 0x8;
    public const uint EPOLLHUP = 0x10;
    public const uint EPOLLRDHUP = 0x2000;

    public const int ECONNREFUSED = 111;
    public const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000;

    /// <summary>The room in <c>sockaddr_un.sun_path</c>, its terminating NUL included.</summary>
    public const int UnixPathMax = 108;

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(SafeHandle socket, SockAddrUn* address, uint length);

    [LibraryImport(Lib, EntryPoint = "listen", SetLastError = true)]
    public static partial int Listen(SafeHandle socket, int backlog);

    [LibraryImport(Lib, EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(SafeHandle socket, void* address, void* length, int flags);

    [LibraryImport(Lib, EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(SafeHandle socket, SockAddrUn* address, uint length);

    [LibraryImport(Lib, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(SafeHandle socket, MsgHdr* message, int flags);

    [LibraryImport(Lib, EntryPoint = "shutdown", SetLastError = true)]
    public static partial int Shutdown(SafeHandle socket, int how);

    [LibraryImport(Lib, EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Unlink(string path);

    [LibraryImport(Lib, EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Lstat(string path, Stat* buffer);

    /// <summary><c>struct sockaddr_un</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockAddrUn
    {
        public ushort Family;
        public SunPath Path;
    }

    [System.Runtime.CompilerServices.InlineArray(UnixPathMax)]
    public struct SunPath
    {
        private byte _first;
    }

    /// <summary><c>struct msghdr</c> on x86-64.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary><c>struct stat</c> on x86-64 (144 bytes); only the device, inode and mode are read.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 144)]
    public struct Stat
    {
        [FieldOffset(0)]
        public ulong Device;

        [FieldOffset(8)]
        public ulong Inode;

        [FieldOffset(24)]
        public uint Mode;
    }
}
