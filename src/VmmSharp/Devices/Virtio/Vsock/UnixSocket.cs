using System.Runtime.InteropServices;
using System.Text;
using VmmSharp.Interop;

namespace VmmSharp.Devices.Virtio.Vsock;

/// <summary>Non-blocking Unix-domain stream sockets: the vsock device's host side (listen, accept, connect).</summary>
internal static unsafe class UnixSocket
{
    /// <summary>The longest socket path <c>sockaddr_un</c> holds, in bytes.</summary>
    public const int MaxPathBytes = Libc.UnixPathMax - 1;

    /// <summary>
    /// Listens on <paramref name="path"/>. A socket file nobody listens on (left by a process that died) is replaced;
    /// a socket something listens on, or any other file, is refused.
    /// </summary>
    /// <exception cref="IOException">The path is in use or cannot be bound; the message names it.</exception>
    public static SafeFileDescriptor Listen(string path)
    {
        if (path.Length == 0 || Encoding.UTF8.GetByteCount(path) > MaxPathBytes)
        {
            throw new IOException($"vsock socket '{path}': a socket path has 1 to {MaxPathBytes} bytes");
        }
        Libc.Stat st;
        if (Libc.Lstat(path, &st) == 0)
        {
            if ((st.Mode & Libc.S_IFMT) != Libc.S_IFSOCK)
            {
                throw new IOException($"vsock socket '{path}' is in use: a file that is not a socket is there");
            }
            if (TryConnect(path, out int errno) is { } live)
            {
                live.Dispose();
                throw new IOException($"vsock socket '{path}' is in use: something listens on it");
            }
            if (errno != Libc.ECONNREFUSED)
            {
                // EAGAIN (a listener with a full backlog) or anything else: not provably stale, so not ours to remove.
                throw new IOException($"vsock socket '{path}' is in use: {Libc.ErrorText(errno)}");
            }
            Libc.Unlink(path); // a stale socket: nobody listens on it
        }
        SafeFileDescriptor socket = NewSocket(path);
        Libc.SockAddrUn address = Address(path, out uint length);
        if (Libc.Bind(socket, &address, length) < 0 || Libc.Listen(socket, 128) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            socket.Dispose();
            throw new IOException($"vsock socket '{path}': cannot listen: {Libc.ErrorText(errno)}");
        }
        return socket;
    }

    /// <summary>Connects to <paramref name="path"/> without waiting; null (and the errno) if that does not succeed at once.</summary>
    public static SafeFileDescriptor? TryConnect(string path, out int errno)
    {
        errno = 0;
        if (Encoding.UTF8.GetByteCount(path) > MaxPathBytes)
        {
            errno = 36; // ENAMETOOLONG
            return null;
        }
        SafeFileDescriptor socket;
        try
        {
            socket = NewSocket(path);
        }
        catch (IOException)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        Libc.SockAddrUn address = Address(path, out uint length);
        if (Libc.Connect(socket, &address, length) < 0)
        {
            // A Unix stream connect completes at once or fails (EAGAIN: the listener's backlog is full).
            errno = Marshal.GetLastPInvokeError();
            socket.Dispose();
            return null;
        }
        return socket;
    }

    /// <summary>Accepts one waiting connection, non-blocking; null when none waits (or accept failed).</summary>
    public static SafeFileDescriptor? TryAccept(SafeFileDescriptor listener)
    {
        int fd = Libc.Accept4(listener, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
        return fd < 0 ? null : new SafeFileDescriptor(fd);
    }

    private static SafeFileDescriptor NewSocket(string path)
    {
        int fd = Libc.Socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new IOException($"vsock socket '{path}': socket(AF_UNIX): {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        }
        return new SafeFileDescriptor(fd);
    }

    private static Libc.SockAddrUn Address(string path, out uint length)
    {
        var address = new Libc.SockAddrUn { Family = Libc.AF_UNIX };
        int n = Encoding.UTF8.GetBytes(path, address.Path);
        length = (uint)(sizeof(ushort) + n + 1);
        return address;
    }
}
