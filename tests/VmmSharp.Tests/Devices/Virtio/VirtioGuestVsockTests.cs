using System.Net.Sockets;
using System.Text;
using VmmSharp.Machine;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// The C virtio test guest's vsock test through the machine's hybrid vsock (Firecracker's: a Unix socket): the guest
/// connects to host port 5000 (the socket <c>PATH_5000</c> a host program listens on), and a host program connects to
/// the guest's port 5001 with <c>CONNECT 5001\n</c>; a line goes each way on each connection.
/// </summary>
public sealed class VirtioGuestVsockTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan HostTimeout = TimeSpan.FromSeconds(100);
    private readonly string _socket = Path.Combine(Path.GetTempPath(), $"vmmsharp-vs-{Guid.NewGuid():N}"[..40] + ".sock");

    public void Dispose()
    {
        File.Delete(_socket);
        File.Delete(_socket + "_5000");
    }

    [Fact]
    public void The_guest_connects_to_a_host_program_listening_on_the_port_socket_and_they_exchange_a_line()
    {
        KvmRequirement.Ensure();
        using var cancel = new CancellationTokenSource(HostTimeout);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(_socket + "_5000"));
        listener.Listen(1);
        Task<(string Line, int AfterShutdown)> host = Task.Run(async () =>
        {
            using Socket peer = await listener.AcceptAsync(cancel.Token);
            string line = await ReadLine(peer, cancel.Token);
            await peer.SendAsync("vsock-host-reply\n"u8.ToArray(), cancel.Token);
            // The guest shuts the connection down after reading the reply: the host sees the end of the stream.
            int after = await peer.ReceiveAsync(new byte[16], cancel.Token);
            return (line, after);
        });

        MachineRun run = Run("vsock=out");

        Assert.True(host.Wait(TimeSpan.FromSeconds(10)), $"the host program did not finish\n{run.Describe()}");
        Assert.Equal(("VMMSHARP-VSOCK-OUT\n", 0), host.Result);
        run.AssertLine("VSOCK out connect port=5000 connected");
        run.AssertLine("VSOCK out rx len=17 payload=vsock-host-reply");
        run.AssertLine("VSOCK out closed rst=1");
        run.AssertDone();
    }

    [Fact]
    public void A_guest_connection_to_a_port_nobody_listens_on_is_refused()
    {
        KvmRequirement.Ensure();
        MachineRun run = Run("vsock=out");

        run.AssertLine("VSOCK out connect port=5000 refused"); // the device answered the REQUEST with RST
        run.AssertDone();
    }

    [Fact]
    public void A_host_program_connects_to_the_guests_port_and_they_exchange_a_line()
    {
        KvmRequirement.Ensure();
        using var cancel = new CancellationTokenSource(HostTimeout);
        var guestListening = new TaskCompletionSource();
        Task<(string Ok, string Line)> host = Task.Run(async () =>
        {
            // Only once the guest's driver is up: before that the device has nobody to offer the connection to.
            await guestListening.Task.WaitAsync(cancel.Token);
            using var peer = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await peer.ConnectAsync(new UnixDomainSocketEndPoint(_socket), cancel.Token);
            await peer.SendAsync("CONNECT 5001\n"u8.ToArray(), cancel.Token);
            string ok = await ReadLine(peer, cancel.Token);
            await peer.SendAsync("hello-guest\n"u8.ToArray(), cancel.Token);
            string line = await ReadLine(peer, cancel.Token);
            return (ok, line);
        });

        MachineRun run = Run("vsock=in", text =>
        {
            if (text.Contains("VSOCK cid=", StringComparison.Ordinal))
            {
                guestListening.TrySetResult();
            }
            return false;
        });

        Assert.True(host.Wait(TimeSpan.FromSeconds(10)), $"the host program did not finish\n{run.Describe()}");
        (string ok, string line) = host.Result;
        Assert.StartsWith("OK ", ok, StringComparison.Ordinal);
        Assert.Equal("VMMSHARP-VSOCK-IN\n", line);
        run.AssertLine($"VSOCK in connect port=5001 from={ok[3..^1]}"); // the host port the device named in its OK line
        run.AssertLine("VSOCK in rx len=12 payload=hello-guest");
        run.AssertLineStartsWith("VSOCK in closed ");
        run.AssertDone();
    }

    private MachineRun Run(string command, Func<string, bool>? watch = null)
    {
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.VirtioKernel)
        {
            CommandLine = command,
            MemorySize = 64UL << 20,
            Vsock = new VsockOptions(3, _socket),
        }, Deadline, watch);
        run.AssertLine("VSOCK cid=3 features=0x100000000");
        return run;
    }

    private static async Task<string> ReadLine(Socket socket, CancellationToken cancel)
    {
        var line = new StringBuilder();
        byte[] one = new byte[1];
        while (!line.ToString().EndsWith('\n'))
        {
            if (await socket.ReceiveAsync(one, cancel) == 0)
            {
                break;
            }
            line.Append((char)one[0]);
        }
        return line.ToString();
    }
}
