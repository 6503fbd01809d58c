using System.Net.Sockets;
using System.Text;
using VmmSharp.Devices.Virtio.Vsock;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// Linux's own virtio-vsock driver (the small test kernel, <c>CONFIG_VIRTIO_VSOCKETS=y</c>) against the device. The
/// kernel cannot run user space on these hosts, so no guest program listens or connects: what the test can show is
/// that the driver probes the device and serves its queues. A host program connects through the Unix socket to a
/// guest port nobody listens on; the device sends Linux a REQUEST, Linux's transport answers RST, and the host's
/// connection is closed without an OK. It does not show data moving or a guest-initiated connection: those need a
/// guest program (the freestanding C test guest in tests/guests/ does them, and the device tests above do with a
/// hand-played driver).
/// </summary>
public sealed class VsockLinuxTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(300);

    [Fact]
    public void Linux_answers_a_host_CONNECT_to_a_port_without_listener_with_RST()
    {
        KvmRequirement.Ensure();
        string dir = Directory.CreateTempSubdirectory("vmmsharp-vsock-linux").FullName;
        string uds = Path.Combine(dir, "v.sock");
        string? hostSaw = null;
        long fromGuest = 0, toGuest = 0;
        Task? exchange = null;
        try
        {
            // root= names a disk that never comes and rootwait waits for it: the kernel idles with its drivers up.
            MachineRun run = MachineRun.Start(new MachineOptions(LinuxTinyKernel.Vmlinux)
            {
                CommandLine = LinuxTinyKernel.CommandLine("root=/dev/vda rootwait"),
                Vsock = new VsockOptions(42, uds),
                MemorySize = 64UL << 20,
            },
                Deadline,
                afterRun: m =>
                {
                    var vsock = (VirtioVsock)m.VirtioDevices[0].Device;
                    (fromGuest, toGuest) = (vsock.PacketsFromGuest, vsock.PacketsToGuest);
                },
                onLine: (machine, text) =>
                {
                    if (exchange is null && text.Contains("Waiting for root device", StringComparison.Ordinal))
                    {
                        exchange = Task.Run(() =>
                        {
                            var watch = System.Diagnostics.Stopwatch.StartNew();
                            hostSaw = ConnectAndRead(uds);
                            TestContext.Current.SendDiagnosticMessage($"vsock: CONNECT to the guest answered ({hostSaw}) after {watch.Elapsed.TotalMilliseconds:0} ms");
                            machine.RequestStop(0, "the host's vsock exchange ended");
                        });
                    }
                });

            if (exchange is null && run.Result.Outcome == MachineOutcome.DeadlineExceeded)
            {
                Assert.Skip($"not reached within {Deadline.TotalSeconds} s on this host (PVM, busy): last line \"{run.Lines.LastOrDefault(l => l.Length > 0)}\"");
            }
            if (run.Result.Outcome == MachineOutcome.Failed && run.Result.Reason.Contains("emulation failure", StringComparison.Ordinal))
            {
                Assert.Skip($"not run: this host's KVM cannot emulate an instruction the kernel uses ({run.Result.Reason})");
            }
            Assert.True(exchange is not null, $"the kernel never waited for its root device\n{run.Describe()}");
            exchange.Wait(TimeSpan.FromSeconds(10));
            Assert.True(run.Result.Outcome == MachineOutcome.Stopped, $"the run did not end with the exchange\n{run.Describe()}");
            run.AssertLineStartsWith("virtio-mmio: Registering device virtio-mmio.0 at 0xd0000000-0xd0000fff, IRQ 5.");
            run.AssertLineStartsWith("NET: Registered PF_VSOCK protocol family");
            Assert.True(hostSaw == "closed", $"the host's connection: {hostSaw}\n{run.Describe()}");
            Assert.True(toGuest >= 1 && fromGuest >= 1, $"packets to the guest {toGuest}, from it {fromGuest}");
            Assert.False(File.Exists(uds), "the machine left its socket behind");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>CONNECT to port 1234 and read: "closed" when the device closes the connection (the guest's RST), else what came.</summary>
    private static string ConnectAndRead(string uds)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 120_000 };
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(uds));
            s.Send("CONNECT 1234\n"u8.ToArray());
            byte[] buffer = new byte[64];
            int n = s.Receive(buffer);
            return n == 0 ? "closed" : $"got \"{Encoding.ASCII.GetString(buffer, 0, n)}\"";
        }
        catch (SocketException e)
        {
            return $"socket error {e.SocketErrorCode}";
        }
    }
}
