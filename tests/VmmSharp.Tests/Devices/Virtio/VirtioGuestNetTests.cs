using System.Net;
using System.Net.Sockets;
using System.Text;
using VmmSharp.Devices.Virtio.Net;
using VmmSharp.Machine;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// The C virtio test guest's network test through a real TAP in a network namespace of the test's own: the guest
/// (10.77.0.2) asks the host end (10.77.0.1) for its MAC with ARP, sends a UDP datagram that a host socket receives, and
/// receives the host socket's answer.
/// </summary>
public sealed class VirtioGuestNetTests
{
    private const string Tap = "vmmtap0";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);

    [Fact]
    public void The_guest_exchanges_udp_datagrams_with_a_host_socket_through_the_tap()
    {
        KvmRequirement.Ensure();
        if (NetNamespace.Unavailable() is { } why)
        {
            Assert.Skip($"not run: {why} to make a TAP in a network namespace of its own");
        }
        using NetNamespace ns = NetNamespace.Create();
        ns.Ip($"tuntap add dev {Tap} mode tap");
        ns.Ip($"addr add 10.77.0.1/24 dev {Tap}");
        ns.Ip($"link set {Tap} up");
        string tapMac = ns.Ip($"-br link show {Tap}").Split(' ', StringSplitOptions.RemoveEmptyEntries)[2];

        using Socket host = ns.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 150_000 };
            s.Bind(new IPEndPoint(IPAddress.Parse("10.77.0.1"), 7777));
            return s;
        });
        string? received = null;
        EndPoint? sender = null;
        var echo = Task.Run(() =>
        {
            byte[] buffer = new byte[256];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            int n = host.ReceiveFrom(buffer, ref from);
            received = Encoding.ASCII.GetString(buffer, 0, n);
            sender = from;
            host.SendTo("pong-from-host"u8, new IPEndPoint(((IPEndPoint)from).Address, 7778));
        });

        long sent = 0, receivedFrames = 0;
        MachineRun run = ns.Run(() => MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = "net",
            MemorySize = 64UL << 20,
            Networks = [new NetOptions(Tap)],
        }, Deadline, afterRun: m =>
        {
            var net = (VirtioNet)m.VirtioDevices[0].Device;
            sent = net.FramesSent;
            receivedFrames = net.FramesReceived;
        }));

        Assert.True(echo.Wait(TimeSpan.FromSeconds(10)), $"the host socket got nothing\n{run.Describe()}");
        Assert.Equal("VMMSHARP-NET-PING", received);
        Assert.Equal("10.77.0.2:7778", sender?.ToString());
        run.AssertLineStartsWith("NET mac=52:54:00:12:34:56 ");
        run.AssertLine($"NET arp reply from=10.77.0.1 mac={tapMac}");
        run.AssertLine("NET udp rx from=10.77.0.1:7777 len=14 payload=pong-from-host");
        run.AssertDone();
        Assert.True(sent >= 2 && receivedFrames >= 2, $"frames sent {sent}, received {receivedFrames}");
    }
}
