using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using VmmSharp.Devices.Virtio.Net;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// One boot of the small Linux kernel on virtio-net, shared by <see cref="VirtioLinuxNetTests"/>: its network comes
/// up through <c>ip=</c> on a TAP in a network namespace of the test's own (host side 10.0.2.1, guest 10.0.2.15), the
/// host pings it (56 bytes and 4000, fragmented both ways), netconsole sends the kernel's log to a UDP socket in the
/// namespace; then the run is stopped. <c>root=/dev/vda rootwait</c> without a disk keeps the kernel alive (and in
/// the kernel: user space cannot run on PVM) for as long as the test needs it.
/// </summary>
public sealed class LinuxNetworkBoot : IDisposable
{
    public const string Tap = "vmmtap0";
    public const string GuestIp = "10.0.2.15";
    public const int NetconsolePort = 6666;
    public const int LargePing = 4000;
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(240);

    /// <summary>How long the host keeps pinging after the kernel said "IP-Config: Complete".</summary>
    private static readonly TimeSpan PingWindow = TimeSpan.FromSeconds(60);

    private readonly Lazy<Outcome> _outcome;

    public LinuxNetworkBoot() => _outcome = new(BootOnce, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The boot's result; skips the calling test (with what was seen) where the boot could not be made or finished.</summary>
    internal Outcome Get()
    {
        KvmRequirement.Ensure();
        _ = LinuxTinyKernel.Vmlinux; // skips with the build command where the kernel is missing
        Outcome o = _outcome.Value;
        if (o.Skip is not null)
        {
            Assert.Skip(o.Skip);
        }
        return o;
    }

    public void Dispose()
    {
    }

    private static Outcome BootOnce()
    {
        var o = new Outcome();
        using NetNamespace ns = NetNamespace.CreateOrSkip();
        ns.AddTap(Tap, "02:00:00:00:00:01", "10.0.2.1/24");
        using Socket netconsole = ns.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 500 };
            s.Bind(new IPEndPoint(IPAddress.Parse("10.0.2.1"), NetconsolePort));
            return s;
        });
        using Socket icmp = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp) { ReceiveTimeout = 2000 });

        using var configured = new ManualResetEventSlim(false);
        using var finished = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        PcMachine? machine = null;
        var listener = new Thread(() => Listen(netconsole, o, finished.Token)) { IsBackground = true, Name = "netconsole listener" };
        var pinger = new Thread(() =>
        {
            if (WaitHandle.WaitAny([configured.WaitHandle, finished.Token.WaitHandle]) != 0)
            {
                return;
            }
            Ping(icmp, o, 56);
            Ping(icmp, o, LargePing);
            // netconsole's lines come right after IP-Config's; give them a moment to arrive.
            SpinWait.SpinUntil(() => o.NetconsoleText.Contains("IP-Config: Complete", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
            machine?.RequestStop(0, "the test pinged the guest and heard its netconsole");
        })
        { IsBackground = true, Name = "pinger" };
        listener.Start();
        pinger.Start();

        string extra = $"ip={GuestIp}::10.0.2.1:255.255.255.0::eth0:off " +
            $"netconsole=@{GuestIp}/eth0,{NetconsolePort}@10.0.2.1/02:00:00:00:00:01 root=/dev/vda rootwait";
        var options = new MachineOptions(LinuxTinyKernel.Vmlinux)
        {
            CommandLine = LinuxTinyKernel.CommandLine(extra),
            Networks = [new NetOptions(Tap)],
            MemorySize = 64UL << 20,
        };
        try
        {
            // The TAP is opened where the machine is built: inside the namespace.
            o.Run = ns.Run(() => MachineRun.Start(options, Deadline,
                text =>
                {
                    if (!configured.IsSet && text.Contains("IP-Config: Complete", StringComparison.Ordinal))
                    {
                        o.ConfiguredAfter = clock.Elapsed;
                        configured.Set();
                    }
                    return false;
                },
                m =>
                {
                    var net = (VirtioNet)m.VirtioDevices[0].Device;
                    o.DriverFeatures = net.DriverFeatures;
                    o.TapOffloads = net.TapOffloads;
                    o.FramesReceived = net.FramesReceived;
                    o.FramesSent = net.FramesSent;
                },
                beforeRun: m => machine = m));
        }
        finally
        {
            finished.Cancel();
            pinger.Join(TimeSpan.FromSeconds(10));
            listener.Join(TimeSpan.FromSeconds(5));
        }
        string reached = o.ConfiguredAfter is { } t ? $"IP-Config: Complete after {t.TotalSeconds:0.0} s" : "no IP-Config: Complete";
        TestContext.Current.SendDiagnosticMessage($"tiny kernel on virtio-net: {reached}; run {o.Run.Result.Outcome} after {clock.Elapsed.TotalSeconds:0.0} s");
        if (o.Run.Result.Outcome == MachineOutcome.DeadlineExceeded)
        {
            // A whole emulated boot (PVM) on a busy host may not get there in time: the rule of the other Linux tests.
            o.Skip = $"not reached within {Deadline.TotalSeconds} s on this host (PVM, busy): {reached}, " +
                $"last line \"{o.Run.Lines.LastOrDefault(l => l.Length > 0)}\"";
        }
        return o;
    }

    /// <summary>Collects netconsole's datagrams (one log line each) until the run ends.</summary>
    private static void Listen(Socket socket, Outcome o, CancellationToken stop)
    {
        byte[] buffer = new byte[2048];
        while (!stop.IsCancellationRequested)
        {
            try
            {
                int n = socket.Receive(buffer);
                lock (o)
                {
                    o.NetconsoleBuilder.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
            }
            catch (SocketException)
            {
                // the receive timeout: look at the stop flag again
            }
        }
    }

    /// <summary>Echo requests with <paramref name="size"/> payload bytes until one is answered with the same payload, or the window ends.</summary>
    private static void Ping(Socket icmp, Outcome o, int size)
    {
        var guest = new IPEndPoint(IPAddress.Parse(GuestIp), 0);
        byte[] request = new byte[8 + size];
        request[0] = 8; // echo request
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(4), 0x5653); // identifier "VS"
        for (int i = 0; i < size; i++)
        {
            request[8 + i] = (byte)i;
        }
        byte[] reply = new byte[size + 128];
        var clock = Stopwatch.StartNew();
        for (ushort seq = 1; clock.Elapsed < PingWindow; seq++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), seq);
            request[2] = request[3] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(2), Checksum(request));
            var sent = Stopwatch.StartNew();
            icmp.SendTo(request, guest);
            while (sent.Elapsed < TimeSpan.FromSeconds(2))
            {
                int n;
                try
                {
                    n = icmp.Receive(reply);
                }
                catch (SocketException)
                {
                    break;
                }
                int ihl = (reply[0] & 0x0f) * 4;
                Span<byte> m = reply.AsSpan(ihl, n - ihl);
                if (m.Length == request.Length && m[0] == 0 && BinaryPrimitives.ReadUInt16BigEndian(m[4..]) == 0x5653
                    && BinaryPrimitives.ReadUInt16BigEndian(m[6..]) == seq && m[8..].SequenceEqual(request.AsSpan(8)))
                {
                    o.Replies[size] = sent.Elapsed;
                    return;
                }
            }
        }
    }

    private static ushort Checksum(ReadOnlySpan<byte> b)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < b.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(b[i..]);
        }
        if ((b.Length & 1) != 0)
        {
            sum += (uint)b[^1] << 8;
        }
        while (sum > 0xffff)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return (ushort)~sum;
    }

    /// <summary>What the boot saw.</summary>
    internal sealed class Outcome
    {
        public MachineRun Run { get; set; } = null!;

        public string? Skip { get; set; }

        public TimeSpan? ConfiguredAfter { get; set; }

        /// <summary>Echo replies by payload size, with their round-trip time.</summary>
        public System.Collections.Concurrent.ConcurrentDictionary<int, TimeSpan> Replies { get; } = new();

        public StringBuilder NetconsoleBuilder { get; } = new();

        public string NetconsoleText
        {
            get
            {
                lock (this)
                {
                    return NetconsoleBuilder.ToString();
                }
            }
        }

        public ulong DriverFeatures { get; set; }

        public uint TapOffloads { get; set; }

        public long FramesReceived { get; set; }

        public long FramesSent { get; set; }
    }
}
