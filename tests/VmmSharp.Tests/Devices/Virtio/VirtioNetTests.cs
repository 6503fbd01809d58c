using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Net;
using VmmSharp.Memory;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>
/// virtio-net on a real TAP in a network namespace of the test's own: the guest side (a hand-built ring) sends an ARP
/// request for the namespace's address, the host kernel's answer comes back through the TAP into a receive buffer.
/// </summary>
public sealed partial class VirtioNetTests : IDisposable
{
    private const ulong RxDesc = 0x5000, RxAvail = 0x6000, RxUsed = 0x7000, RxBuffers = 0x40000, Frame = 0x30000;
    private const int RxBufferSize = 2048, RxCount = 8;
    private static readonly byte[] GuestMac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    private readonly string _namespace = $"vmmsharp-{Guid.NewGuid():N}"[..20];
    private readonly GuestMemory _memory = GuestMemory.WithRam(1 << 20);
    private VirtioNet? _net;
    private VirtioMmioTransport? _transport;

    public void Dispose()
    {
        _transport?.Dispose();
        _net?.Dispose();
        _memory.Dispose();
        Ip($"netns del {_namespace}", check: false);
    }

    [Fact]
    public void An_arp_request_leaves_through_the_tap_and_the_hosts_reply_comes_back()
    {
        if (Environment.UserName != "root" || !File.Exists("/dev/net/tun") || !Ip("-V", check: false))
        {
            Assert.Skip("not run: needs root, /dev/net/tun and iproute2 to make a TAP in a network namespace of its own");
        }
        Ip($"netns add {_namespace}");
        _net = InNamespace(() => new VirtioNet("vmmtap0", GuestMac));
        Ip($"-n {_namespace} addr add 10.77.0.1/24 dev vmmtap0");
        Ip($"-n {_namespace} link set vmmtap0 up");

        _transport = new VirtioMmioTransport(_net, _memory, 0xd000_0000, new RecordingIrqLine());
        var driver = new MmioDriver(_transport);
        Assert.True(driver.Negotiate(VirtioFeatures.Version1 | VirtioNet.FeatureMac));
        driver.SetUpQueue(0, 16, RxDesc, RxAvail, RxUsed);
        driver.SetUpQueue(1, 16, TestRing.Desc, TestRing.Avail, TestRing.Used);
        driver.DriverOk();
        Span<byte> mac = stackalloc byte[6];
        _transport.Read(VirtioMmioRegisters.Config, mac);
        Assert.Equal(GuestMac, mac.ToArray());

        for (int i = 0; i < RxCount; i++)
        {
            _memory.Write(RxDesc + ((ulong)i * 16), new D { Address = RxBuffers + ((ulong)i * RxBufferSize), Length = RxBufferSize, Flags = D.FlagWrite });
            _memory.Write(RxAvail + 4 + ((ulong)i * 2), (ushort)i);
        }
        _memory.Write(RxAvail + 2, (ushort)RxCount);

        byte[] frame = ArpRequest();
        _memory.Write(Frame, frame);
        var tx = new TestRing(_memory, _net.Queues[1], activate: false);
        tx.SetDescriptor(0, Frame, (uint)frame.Length);
        tx.Offer(0);
        _transport.OnNotifyEvent();
        Assert.Equal(1, tx.UsedIdx);
        Assert.Equal(1, _net.FramesSent);

        // The namespace's kernel answers; the event loop would call this when the TAP turns readable.
        byte[]? reply = null;
        var clock = Stopwatch.StartNew();
        while (reply is null && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            _net.OnBackendReadable();
            reply = FindArpReply();
            if (reply is null)
            {
                Thread.Sleep(20);
            }
        }
        Assert.NotNull(reply);
        Assert.Equal(GuestMac, reply.AsSpan(VirtioNet.HeaderSize, 6).ToArray()); // to the guest
        Assert.Equal(new byte[] { 10, 77, 0, 1 }, reply.AsSpan(VirtioNet.HeaderSize + 28, 4).ToArray()); // from 10.77.0.1
    }

    private byte[]? FindArpReply()
    {
        ushort used = _memory.Read<ushort>(RxUsed + 2);
        for (int i = 0; i < used; i++)
        {
            uint id = _memory.Read<uint>(RxUsed + 4 + ((ulong)i * 8));
            uint length = _memory.Read<uint>(RxUsed + 8 + ((ulong)i * 8));
            byte[] b = new byte[length];
            _memory.Read(RxBuffers + (id * RxBufferSize), b);
            Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(10))); // num_buffers
            int eth = VirtioNet.HeaderSize;
            if (length >= eth + 42 && b[eth + 12] == 0x08 && b[eth + 13] == 0x06 && b[eth + 21] == 2)
            {
                return b;
            }
        }
        return null;
    }

    /// <summary>virtio_net_hdr_v1 (all zero: no offload) + who-has 10.77.0.1 tell 10.77.0.2.</summary>
    private static byte[] ArpRequest()
    {
        byte[] f = new byte[VirtioNet.HeaderSize + 42];
        Span<byte> e = f.AsSpan(VirtioNet.HeaderSize);
        e[..6].Fill(0xff);
        GuestMac.CopyTo(e[6..]);
        e[12] = 0x08;
        e[13] = 0x06;
        byte[] arp = [0, 1, 8, 0, 6, 4, 0, 1];
        arp.CopyTo(e[14..]);
        GuestMac.CopyTo(e[22..]);
        new byte[] { 10, 77, 0, 2 }.CopyTo(e[28..]);
        new byte[] { 10, 77, 0, 1 }.CopyTo(e[38..]);
        return f;
    }

    /// <summary>Runs <paramref name="create"/> on a thread that joined the namespace (a TAP is created where its creator is).</summary>
    private T InNamespace<T>(Func<T> create)
    {
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using SafeFileHandle ns = File.OpenHandle($"/run/netns/{_namespace}");
                if (SetNs(ns, 0x40000000) != 0)
                {
                    throw new IOException($"setns: errno {Marshal.GetLastPInvokeError()}");
                }
                result = create();
            }
#pragma warning disable CA1031 // rethrown on the test's thread
            catch (Exception e)
#pragma warning restore CA1031
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            throw new InvalidOperationException($"in namespace {_namespace}: {error.Message}", error);
        }
        return result!;
    }

    private static bool Ip(string arguments, bool check = true)
    {
        var psi = new ProcessStartInfo("ip", arguments.Split(' ')) { RedirectStandardError = true, RedirectStandardOutput = true };
        try
        {
            using Process p = Process.Start(psi)!;
            p.WaitForExit(10_000);
            if (check)
            {
                Assert.True(p.ExitCode == 0, $"ip {arguments}: {p.StandardError.ReadToEnd()}");
            }
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) when (!check)
        {
            return false;
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(SafeFileHandle fd, int nstype);
}
