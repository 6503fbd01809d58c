using System.Diagnostics;
using System.Runtime.InteropServices;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// The network side of <c>vmm bench net</c>: a network namespace of the calling thread's own (so nothing touches the
/// host's network; processes this thread starts are in it too), a persistent TAP in it that both VMMs attach to by
/// name, and a raw packet socket on that TAP that sends frames to the guest.
/// </summary>
internal static unsafe partial class NetNamespace
{
    private const int CloneNewNet = 0x40000000;
    private const int AfPacket = 17;
    private const int SockRaw = 3;
    private const ushort EthPAll = 0x0003;

    /// <summary>Moves the calling thread into a new network namespace; the processes it starts inherit it.</summary>
    public static void Enter()
    {
        if (Unshare(CloneNewNet) != 0)
        {
            throw new VmmException($"unshare(CLONE_NEWNET) failed (errno {Marshal.GetLastPInvokeError()}): the net bench needs root");
        }
    }

    /// <summary>Creates TAP <paramref name="name"/> (persistent, multi-queue off, vnet header on) and brings it and lo up, with ip.</summary>
    public static void CreateTap(string name)
    {
        Ip("tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr");
        Ip("link", "set", name, "up");
        Ip("link", "set", "lo", "up");
    }

    /// <summary>
    /// Frames the host side of <paramref name="tap"/> received (what the VMM wrote into it), from
    /// /proc/thread-self/net/dev: this thread's namespace (sysfs shows the one it was mounted in).
    /// </summary>
    public static long ReceivedFrames(string tap)
    {
        foreach (string line in File.ReadLines("/proc/thread-self/net/dev"))
        {
            string[] f = line.Split([' ', ':'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length > 2 && f[0] == tap)
            {
                return long.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        throw new VmmException($"TAP {tap} is not in /proc/thread-self/net/dev");
    }

    private static void Ip(params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        using Process ip = Process.Start(start) ?? throw new VmmException("cannot run ip (apt-get install iproute2)");
        string error = ip.StandardError.ReadToEnd();
        ip.WaitForExit();
        if (ip.ExitCode != 0)
        {
            throw new VmmException($"ip {string.Join(' ', args)}: {error.Trim()}");
        }
    }

    /// <summary>
    /// Sends 60-byte broadcast frames into <paramref name="tap"/> (the host's side of it, so the VMM reads them from
    /// the TAP's file) as fast as it can until stopped; frames the TAP's queue has no room for are dropped there.
    /// </summary>
    public sealed class Sender : IDisposable
    {
        private readonly int _socket;
        private readonly int _ifindex;
        private volatile bool _stop;
        private Thread? _thread;

        /// <summary>Opens the socket, in the calling thread's namespace.</summary>
        public Sender(string tap)
        {
            _ifindex = (int)IfNameToIndex(tap);
            _socket = Socket(AfPacket, SockRaw, 0);
            if (_ifindex == 0 || _socket < 0)
            {
                throw new VmmException($"cannot open a packet socket on {tap} (errno {Marshal.GetLastPInvokeError()})");
            }
        }

        /// <summary>Frames sent so far.</summary>
        public long Sent { get; private set; }

        /// <summary>Starts sending on a thread of its own.</summary>
        public void Start()
        {
            _stop = false;
            _thread = new Thread(Send) { IsBackground = true, Name = "bench-net-sender" };
            _thread.Start();
        }

        /// <summary>Stops sending.</summary>
        public void Stop()
        {
            _stop = true;
            _thread?.Join();
            _thread = null;
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            Stop();
            _ = Close(_socket);
        }

        private void Send()
        {
            byte* frame = stackalloc byte[60];
            new Span<byte>(frame, 6).Fill(0xff);
            ReadOnlySpan<byte> src = [0x52, 0x54, 0x00, 0xbe, 0x4c, 0x01];
            src.CopyTo(new Span<byte>(frame + 6, 6));
            frame[12] = 0x88;
            frame[13] = 0xb5;
            var address = new SockaddrLl { Family = AfPacket, Protocol = (ushort)((EthPAll << 8) | (EthPAll >> 8)), IfIndex = _ifindex, HaLen = 6 };
            while (!_stop)
            {
                if (SendTo(_socket, frame, 60, 0, &address, (uint)sizeof(SockaddrLl)) == 60)
                {
                    Sent++;
                }
                else
                {
                    Thread.Yield(); // the TAP's queue is full
                }
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SockaddrLl
    {
        public ushort Family;
        public ushort Protocol;
        public int IfIndex;
        public ushort HaType;
        public byte PktType;
        public byte HaLen;
        public ulong Addr;
    }

    [LibraryImport("libc.so.6", EntryPoint = "unshare", SetLastError = true)]
    private static partial int Unshare(int flags);

    [LibraryImport("libc.so.6", EntryPoint = "if_nametoindex", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial uint IfNameToIndex(string name);

    [LibraryImport("libc.so.6", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc.so.6", EntryPoint = "sendto", SetLastError = true)]
    private static partial nint SendTo(int socket, byte* buffer, nuint length, int flags, SockaddrLl* address, uint addressLength);

    [LibraryImport("libc.so.6", EntryPoint = "close")]
    private static partial int Close(int fd);
}
